"""What a run costs before its first step, and the run process's imports.

    uv run --group bench python -m bench.bench_run_start [--syncs 3]

Starts a throw-away PostgreSQL (Pay and Dagster's instance), a small simulator tenant and
`dagster dev`, connects the tenant, waits for its initial import, and launches the sync job a few
times through GraphQL `launchRun`, printing for each run: launch → dequeued (the run queue),
dequeued → first step (the launcher and the run worker's boot: a fresh Python that imports
Dagster and the code location, then the run's resources), first step → end, and the wall time
launch → done as a caller sees it. Then a bulk import of three years of that connection, and how
many runs Dagster made of it (`--backfill-days`). Then the import time of the code location
(`python -X importtime -c "import assignar_pipeline.definitions"`), the part of the boot that is
ours.

`run_start(dagster, job, run_config, tags)` measures one run on a running `DagsterDev` (the
full benchmark can call it for its incremental sync).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bench.dagster_stack import ROOT, DagsterDev, write_instance

RUN_EVENTS = """query ($id: ID!) { logsForRun(runId: $id, limit: 5000) { __typename
  ... on EventConnection { events { __typename ... on MessageEvent { timestamp } } } } }"""


@dataclass(frozen=True)
class RunStart:
    """Seconds of one run, from the caller's launch to its end (Dagster's run events)."""

    status: str
    queued: float  # launch → the daemon dequeues it (RunDequeuedEvent)
    boot: float  # dequeued → first step started: the launcher and the run worker's start
    steps: float  # first step started → run ended
    wall: float  # launch → run ended, as the caller saw it

    def line(self) -> str:
        return (
            f"{self.status}: launch → dequeued {self.queued:.1f} s, dequeued → first step "
            f"{self.boot:.1f} s, first step → end {self.steps:.1f} s; wall {self.wall:.1f} s"
        )


def run_start(dagster: DagsterDev, job: str, run_config: dict, tags: dict[str, str]) -> RunStart:
    """Launch `job` on a running Dagster and time its start (clock: this machine's)."""
    launched = time.time()
    run_id = dagster.launch_job(job, run_config, tags)
    run = dagster.wait_run(run_id, 600)
    wall = time.time() - launched
    events = dagster.graphql(RUN_EVENTS, id=run_id)["logsForRun"]["events"]
    first: dict[str, float] = {}
    for event in events:
        first.setdefault(event["__typename"], int(event["timestamp"]) / 1000)
    dequeued = first.get("RunDequeuedEvent", first.get("RunStartingEvent", launched))
    first_step = first.get("ExecutionStepStartEvent", run["endTime"])
    return RunStart(
        status=run["status"],
        queued=dequeued - launched,
        boot=first_step - dequeued,
        steps=run["endTime"] - first_step,
        wall=wall,
    )


def backfill_runs(
    dagster: DagsterDev, first: date, last: date, connection: str
) -> tuple[int, float]:
    """(runs, wall seconds) of a bulk import of `first`..`last` for one connection, launched as
    `bulk-import` does (GraphQL `launchPartitionBackfill`)."""
    from assignar_pipeline.bulk import BulkImport, launch

    started = time.monotonic()
    backfill_id = launch(
        f"{dagster.url}/graphql", BulkImport(start=first, end=last, connections=(connection,))
    )
    runs = dagster.wait_backfill(backfill_id, 3600)
    failed = [r["runId"] for r in runs if r["status"] != "SUCCESS"]
    if failed:
        raise RuntimeError(f"backfill runs failed: {failed}")
    return len(runs), time.monotonic() - started


def import_seconds(module: str = "assignar_pipeline.definitions", repeat: int = 3) -> float:
    """The least of `repeat` cumulative import times of `module` in a fresh Python (seconds)."""
    best = float("inf")
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", f"import {module}"],
            cwd=ROOT, capture_output=True, text=True, check=True,
        )  # fmt: skip
        line = re.search(rf"\|\s*(\d+) \| {re.escape(module)}$", out.stderr, re.MULTILINE)
        best = min(best, int(line.group(1)) / 1e6)
    return best


def main() -> None:
    from assignar_pipeline.connections import ConnectionRequest, connect
    from assignar_pipeline.pay.database import create_pay_engine, migrate
    from assignar_pipeline.regions import Endpoints
    from bench.payteam import OWNER, bench_team
    from bench.run import CLIENT_ID, SECRET, ZONE, Simulator, client_for, free_port, load
    from tests.support.postgres import TemporaryPostgres

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--syncs", type=int, default=3, help="sync runs to launch")
    parser.add_argument(
        "--dequeue-interval",
        type=int,
        default=1,
        help="seconds between the daemon's looks at the run queue (deploy/dagster.yaml: 1; "
        "Dagster's default: 5)",
    )
    parser.add_argument(
        "--backfill-days",
        type=int,
        default=1096,
        help="then bulk-import this many days of one connection and count its runs (0: skip)",
    )
    args = parser.parse_args()
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    today = now.astimezone(ZoneInfo(ZONE)).date()
    print(f"# Run start (run queue looked at every {args.dequeue_interval} s; load {load()})")
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        pg = stack.enter_context(TemporaryPostgres())
        pay_url, dagster_url = pg.create_database("pay"), pg.create_database("dagster")
        history = 40 + args.backfill_days  # the backfill ends before the last 4 weeks
        sim = stack.enter_context(Simulator(0.02, history, now, Path(tmp) / "sim.log"))
        engine = create_pay_engine(pay_url)
        migrate(engine)
        team = bench_team(engine, client_for(sim))
        os.environ["BENCH_SECRET"] = SECRET
        connect(engine, ConnectionRequest("bench", team, OWNER, "au", CLIENT_ID, "BENCH_SECRET",
                                          ZONE, import_orders=False),
                endpoints=Endpoints(sim.api, sim.token_url))  # fmt: skip
        engine.dispose()
        home = Path(tmp) / "dagster_home"
        write_instance(home, dagster_url, 2)
        with (home / "dagster.yaml").open("a") as instance:
            instance.write(
                "run_coordinator:\n  module: dagster.core.run_coordinator\n"
                "  class: QueuedRunCoordinator\n"
                f"  config:\n    dequeue_interval_seconds: {args.dequeue_interval}\n"
            )
        env = {
            **os.environ,
            "ASSIGNAR_API_URL": sim.api,
            "ASSIGNAR_TOKEN_URL": sim.token_url,
            "PAY_DATABASE_URL": pay_url,
            # No sensor or schedule launches anything meanwhile.
            "PIPELINE_SENSOR_INTERVAL": "3600",
            "PIPELINE_HISTORY_START": (today - timedelta(days=history)).isoformat(),
        }
        dagster = stack.enter_context(DagsterDev(home, free_port(), env, Path(tmp) / "dagster.log"))
        # The initial-import sensor imports the new connection's last 28 days first.
        dagster.wait_runs(600, **{"assignar/operation": "initial_import"})
        for n in range(args.syncs):
            result = run_start(
                dagster,
                "sync_assignar",
                {"resources": {"scope": {"config": {"connections": ["bench"]}}}},
                {"assignar/operation": "sync"},
            )
            print(f"  sync {n + 1}: {result.line()} (load {load()})", flush=True)
        if args.backfill_days:
            last = today - timedelta(days=29)  # before the initial import's 4 weeks
            first = last - timedelta(days=args.backfill_days - 1)
            runs, wall = backfill_runs(dagster, first, last, "bench")
            print(f"  bulk import of {args.backfill_days} days ({first}..{last}), one "
                  f"connection: {runs} runs, {wall:.0f} s (load {load()})", flush=True)  # fmt: skip
    seconds = import_seconds()
    print(f"  import assignar_pipeline.definitions: {seconds:.2f} s (least of 3; load {load()})")


if __name__ == "__main__":
    main()

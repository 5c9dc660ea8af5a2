"""Peak memory of one long ranged run, against the length of its range.

    uv run --group bench python -m bench.bench_run_memory [--scale 0.2] [--months 3 33]

Starts a throw-away PostgreSQL and the simulator's large tenant (at `--scale`), and for each
number of months: a fresh Pay database, the connection, its projects and workers (one process),
then the timesheets of that many months as ONE ranged run of `assignar_timesheets` and
`pay_timesheets` (`dg.materialize` with Dagster's partition-range tags) in a fresh Python process
that, like a run worker, has imported the whole code location. Prints that process's peak RSS
(`ru_maxrss`), records and seconds: memory should not grow with the range, since each run
streams its range 7 days at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bench.dagster_stack import ROOT

SCOPE = {"resources": {"scope": {"config": {"connections": ["bench"]}}}}


def child(step: str, first: str, last: str) -> None:
    """In the measured process: materialize like a run worker would, print JSON figures."""
    import dagster as dg

    from assets import ASSET_CHECKS, ASSETS
    from assignar_pipeline.definitions import defs  # the run worker's imports, all of them
    from resources import RESOURCES

    assert defs is not None
    if step == "snapshot":
        selection = ["assignar_projects", "assignar_workers", "pay_projects", "pay_employees"]
        tags = {}
    else:
        selection = ["assignar_timesheets", "pay_timesheets"]
        tags = {
            "dagster/asset_partition_range_start": first,
            "dagster/asset_partition_range_end": last,
        }
    started = time.monotonic()
    result = dg.materialize(
        [*ASSETS, *ASSET_CHECKS],
        selection=selection,
        resources=RESOURCES,
        run_config=SCOPE,
        tags=tags,
        raise_on_error=False,
    )
    # A ranged run's materialization is recorded once per date, each with the run's totals.
    rows = max(
        (int(m.metadata["dagster/row_count"].value)
         for m in result.asset_materializations_for_node("assignar_timesheets")
         if "dagster/row_count" in m.metadata),
        default=0,
    )  # fmt: skip
    print(json.dumps({
        "success": result.success,
        "seconds": time.monotonic() - started,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "timesheets": rows,
    }))  # fmt: skip


def _run_child(env: dict[str, str], step: str, first: date, last: date) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "bench.bench_run_memory", "--child", step,
         first.isoformat(), last.isoformat()],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"{step} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    from assignar_pipeline.connections import ConnectionRequest, connect
    from assignar_pipeline.pay.database import create_pay_engine, migrate
    from assignar_pipeline.regions import Endpoints
    from bench.payteam import OWNER, bench_team
    from bench.run import CLIENT_ID, SECRET, ZONE, Simulator, client_for, load
    from tests.support.postgres import TemporaryPostgres

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.2, help="the large tenant's scale")
    parser.add_argument("--months", type=int, nargs="+", default=[3, 33])
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    today = now.astimezone(ZoneInfo(ZONE)).date()
    days = max(args.months) * 31
    print(f"# Peak RSS of one ranged run (scale {args.scale:g}; load {load()})", flush=True)
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        pg = stack.enter_context(TemporaryPostgres())
        sim = stack.enter_context(Simulator(args.scale, days, now, Path(tmp) / "sim.log"))
        for months in args.months:
            pay_url = pg.create_database(f"pay_{months}")
            engine = create_pay_engine(pay_url)
            migrate(engine)
            team = bench_team(engine, client_for(sim))
            os.environ["BENCH_SECRET"] = SECRET
            connect(engine, ConnectionRequest("bench", team, OWNER, "au", CLIENT_ID,
                                              "BENCH_SECRET", ZONE),
                    endpoints=Endpoints(sim.api, sim.token_url))  # fmt: skip
            engine.dispose()
            last = today - timedelta(days=1)
            first = last - timedelta(days=round(months * 30.44) - 1)
            env = {
                **os.environ,
                "ASSIGNAR_API_URL": sim.api,
                "ASSIGNAR_TOKEN_URL": sim.token_url,
                "PAY_DATABASE_URL": pay_url,
                "PIPELINE_HISTORY_START": (first - timedelta(days=1)).isoformat(),
                "DAGSTER_HOME": tmp,
            }
            _run_child(env, "snapshot", first, last)
            figures = _run_child(env, "range", first, last)
            print(f"  {months} months ({first}..{last}) in one run: peak RSS "
                  f"{figures['peak_rss_mb']:.0f} MB, {figures['timesheets']:,} timesheets, "
                  f"{figures['seconds']:.0f} s, success {figures['success']} "
                  f"(load {load()})", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()

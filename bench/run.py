"""`make bench`: the full import, the machine's limits, dlt, and the syncs, in one go.

    uv run --group bench python -m bench [--scale 0.1] [--days 1095] [--runs-at-once 2]

The default (a tenth of the large tenant's workers, projects and orders over its 3 years) is sized
for `make bench` within 20 minutes on 2 cores (estimated from the full-scale run's parts: the
fixed costs, run start-ups and the 200-tenant tick, are about half of it); `--scale 1` is the
whole large tenant (about an hour), `--days` shortens the history (the 3-month vs 33-month memory
row and the runs-per-3-years target need 1095).

Starts a throw-away PostgreSQL (Pay, Dagster's instance, dlt's dataset), the simulator's large
tenant in its own process, and `dagster dev` on PostgreSQL; connects a Pay team, lets the
initial-import sensor import its last 28 days, then launches the bulk import of the whole range
as a real backfill (GraphQL `launchPartitionBackfill`) and waits for it. Then, on the same data:
the fetch limit and the load limit (bench/limits.py), each stage alone (fetch + parse,
validation, staging, Pay load: bench/stages.py), dlt (bench/peer_dlt.py), an incremental sync
of 100 changes, and the hourly tick over many tenants (bench/bench_sync.py). Prints one
markdown table, with a ratio for each of issue #17's targets and, for each target not met, what
bounds it (the stage rates and the profile's largest functions), and appends it, with the date,
machine, commit and load average, to bench/RESULTS.md; a py-spy profile of the backfill goes to
bench/profile/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import sqlalchemy as sa

from assignar_pipeline.bulk import BulkImport, launch
from assignar_pipeline.client import AssignarClient
from assignar_pipeline.connections import ConnectionRequest, connect
from assignar_pipeline.pay import tables as t
from assignar_pipeline.pay.database import create_pay_engine, migrate
from assignar_pipeline.regions import Endpoints
from assignar_pipeline.runs import INITIAL_IMPORT, OPERATION_TAG, SYNC, scope_config
from assignar_pipeline.sync_settings import SettingsChange, change_settings
from bench.dagster_stack import ROOT, DagsterDev, run_seconds, write_instance
from bench.limits import copy_limit
from bench.payteam import OWNER, bench_team
from bench.procs import Sampler, cpu_seconds, wait_for
from bench.stages import chained_rate
from tests.support.postgres import TemporaryPostgres

CLIENT_ID, SECRET = "demo-client", "demo-secret-change-me"  # the simulator's demo credentials
ZONE = "Australia/Sydney"
RESULTS = ROOT / "bench" / "RESULTS.md"
PROFILE_DIR = ROOT / "bench" / "profile"
#: The incremental sync's lookback (days): the 100 changes fall in the last three weeks, and
#: hard deletes are only seen by a lookback listing.
LOOKBACK_DAYS = 21
#: The default scale and history: `make bench` within 20 minutes on 2 shared cores.
DEFAULT_SCALE, DEFAULT_DAYS = 0.1, 1095
#: The stage rows read the last this many days of the range (the 3-month backfill's range).
STAGE_DAYS = 91


def profile_path(args) -> Path:
    """full_import.folded at full scale; smaller runs name their scale (and keep the full one)."""
    if (args.scale, args.days) == (1.0, 1095):
        return PROFILE_DIR / "full_import.folded"
    return PROFILE_DIR / f"full_import_scale{args.scale:g}_{args.days}d.folded"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


@dataclass
class Table:
    """The figures, one markdown row each: what, value, target, verdict, load average then;
    and for each target not met, what bounds it."""

    rows: list[tuple[str, str, str, str, str]] = field(default_factory=list)
    bounds: list[tuple[str, str]] = field(default_factory=list)

    def add(self, what: str, value: str, target: str = "", verdict: str = "",
            bound: str = "") -> None:  # fmt: skip
        row = (what, value, target, verdict, load())
        self.rows.append(row)
        print(f"  {what}: {value}" + (f"  [{target}: {verdict}]" if target else ""), flush=True)
        if verdict.startswith("not met") and bound:
            self.bounds.append((what, bound))
            print(f"    bounded by: {bound}", flush=True)

    def markdown(self) -> str:
        lines = ["| measure | value | target | verdict | load avg (1/5/15 min) |",
                 "|---|---|---|---|---|"]  # fmt: skip
        lines += [f"| {' | '.join(r)} |" for r in self.rows]
        if self.bounds:
            lines += ["", "What bounds the targets not met:", ""]
            lines += [f"- **{what}**: {bound}" for what, bound in self.bounds]
        return "\n".join(lines)


def verdict(ok: bool, ratio: float, unit: str = "×") -> str:
    return f"{'met' if ok else 'not met'} ({ratio:.2f}{unit})"


def profile_top(args, n: int = 5) -> str:
    """The run processes' largest functions of ours (inclusive) in the backfill's profile."""
    summary = profile_path(args).with_suffix(".md")
    if not summary.exists():
        return "no profile (--no-profile)"
    lines = summary.read_text().split("where their time goes", 1)[-1].splitlines()
    rows = [line.strip("| ").split(" | ") for line in lines if line.startswith("| `")][:n]
    top = "; ".join(f"{fn.strip('`')} {share}" for fn, share in rows)
    return f"profile of the run processes ({summary.relative_to(ROOT)}): {top}"


def stage_summary(stages: dict) -> str:
    """The stage rates, slowest first, and what they allow chained."""
    ranked = sorted(stages.items(), key=lambda kv: kv[1].rate)
    rates = ", ".join(f"{name} {s.rate:,.0f}/s" for name, s in ranked)
    slowest = next(((name, s) for name, s in ranked if s.profile), None)
    profile = f"; cProfile of {slowest[0]}: {slowest[1].profile}" if slowest else ""
    return f"stages alone: {rates}; chained on one core {chained_rate(stages):,.0f}/s{profile}"


class Simulator:
    """The simulator's large tenant as its own process (`simulator serve --large`)."""

    def __init__(self, scale: float, days: int, now: datetime, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api, self.token_url = f"{self.url}/v2", f"{self.url}/oauth2/token"
        self.args = ["--large", "--scale", str(scale), "--days", str(days),
                     "--now", now.isoformat(), "--port", str(self.port)]  # fmt: skip
        self.log_path = log

    def __enter__(self) -> Simulator:
        self.log = self.log_path.open("w")
        started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "assignar_pipeline.cli", "simulator", "serve", *self.args],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT,
        )  # fmt: skip

        def up() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"the simulator exited; see {self.log_path}")
            try:
                return httpx.get(f"{self.url}/_simulator/stats", timeout=5).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, 900, "the simulator answering", every=1)
        self.generation_seconds = time.monotonic() - started
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()

    def stats(self) -> dict:
        return httpx.get(f"{self.url}/_simulator/stats", timeout=60).json()

    def requests(self) -> Counter:
        return Counter(
            {route: sum(codes.values()) for route, codes in self.stats()["requests"].items()}
        )

    def control(self, method: str, path: str, body: dict | None = None) -> dict:
        response = httpx.request(method, f"{self.url}/_simulator/{path}", json=body, timeout=60)
        response.raise_for_status()
        return response.json()


def requests_between(before: Counter, after: Counter) -> tuple[int, int]:
    """(token requests, data requests) served between two request counts."""
    diff = after - before
    token = diff.pop("POST /oauth2/token", 0)
    return token, sum(diff.values())


def client_for(sim: Simulator) -> AssignarClient:
    return AssignarClient(CLIENT_ID, SECRET, "au", endpoints=Endpoints(sim.api, sim.token_url))


# -- the full import ----------------------------------------------------------------------------


def backfill(dagster: DagsterDev, sim: Simulator, first: date, last: date, timeout: float,
             title: str) -> dict:  # fmt: skip
    """One bulk import (`bulk-import`'s mutation) of timesheets and orders; wall and requests."""
    before = sim.requests()
    spec = BulkImport(start=first, end=last, connections=("bench",), orders=True, title=title)
    started = time.monotonic()
    backfill_id = launch(f"{dagster.url}/graphql", spec)
    runs = dagster.wait_backfill(backfill_id, timeout)
    ended = time.monotonic()
    token, data = requests_between(before, sim.requests())
    return {"wall": ended - started, "runs": runs, "token": token, "data": data,
            "started": started, "ended": ended, "first": first, "last": last}  # fmt: skip


def full_import(args, table: Table, sim: Simulator, dagster: DagsterDev, sampler: Sampler,
                first: date, last: date) -> dict:  # fmt: skip
    """The initial import, then the history as a user imports it: the last 3 months, then the
    rest (two backfills, so that their run processes' memory can be compared)."""
    print("\n== Initial import (launched by initial_import_sensor)", flush=True)
    before = sim.requests()
    runs = dagster.wait_runs(600, **{OPERATION_TAG: INITIAL_IMPORT})
    assert all(r["status"] == "SUCCESS" for r in runs), runs
    table.add("initial import (snapshots + last 28 days, 1 run)",
              f"{run_seconds(runs):.1f} s run time, {sum(requests_between(before, sim.requests()))}"
              " requests")  # fmt: skip
    profiler = None
    if args.profile:
        PROFILE_DIR.mkdir(exist_ok=True)
        profiler = subprocess.Popen(
            ["py-spy", "record", "--subprocesses", "--rate", "20", "--format", "raw",
             "--output", str(profile_path(args)),
             "--pid", str(dagster.process.pid)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
    rows_before = sim.stats()["rows_served"]
    split = max(first, last - timedelta(days=91))
    print(f"\n== Bulk import {split}..{last} (backfill: last 3 months)", flush=True)
    recent = backfill(dagster, sim, split, last, args.timeout, "bench: last 3 months")
    print(f"   {recent['wall']:.0f} s, {len(recent['runs'])} runs", flush=True)
    phases = [recent]
    if first < split:
        print(f"\n== Bulk import {first}..{split - timedelta(days=1)} (backfill: the rest)",
              flush=True)  # fmt: skip
        phases.append(backfill(dagster, sim, first, split - timedelta(days=1), args.timeout,
                               "bench: the rest of the history"))  # fmt: skip
    if profiler is not None:
        profiler.send_signal(2)  # SIGINT: py-spy writes its output and exits
        profiler.wait(300)
        from bench.profile_summary import main as summarize

        summarize(profile_path(args))
    wall = sum(p["wall"] for p in phases)
    runs = [r for p in phases for r in p["runs"]]
    failed = [r["runId"] for r in runs if r["status"] != "SUCCESS"]
    rows = sim.stats()["rows_served"] - rows_before
    with create_pay_engine(args.pay_url).connect() as conn:
        staged = conn.execute(sa.select(sa.func.count()).select_from(t.staging_timesheet)).scalar()
        orders = conn.execute(sa.select(sa.func.count()).select_from(t.staging_order)).scalar()
        in_pay = conn.execute(
            sa.select(sa.func.count())
            .select_from(t.timesheet)
            .where(t.timesheet.c.status != "void")
        ).scalar()
    fetched = staged + orders
    table.add("full import: records (timesheets + orders)",
              f"{staged:,} + {orders:,} staged, {in_pay:,} timesheets in Pay")  # fmt: skip
    table.add("full import: wall time (launch → last run done, incl. run start-ups)",
              " + ".join(f"{p['wall']:.0f} s" for p in phases) + f" = {wall:.0f} s; {len(runs)} "
              f"runs ({len(failed)} failed), {args.runs_at_once} at once")  # fmt: skip
    table.add("full import: throughput", f"{fetched / wall:,.0f} records/s")
    token, data = sum(p["token"] for p in phases), sum(p["data"] for p in phases)
    table.add("full import: API requests", f"{token} token + {data:,} data ({rows:,} rows served)")
    count = 1 + len(runs)
    table.add(
        f"runs for the connection's {args.days} days (initial import + the backfills)",
        f"{count} (1 + {' + '.join(str(len(p['runs'])) for p in phases)})",
        "≤ 4 (3 years)",
        verdict(count <= 4, count / 4),
        bound="a backfill run takes at most BACKFILL_DAYS_PER_RUN daily partitions "
        "(assets/partitions.py): here "
        + ", ".join(
            f"{(p['last'] - p['first']).days + 1} days in {len(p['runs'])} runs" for p in phases
        )
        + "; the bench imports the history as two backfills (3 months, then the rest) to "
        "compare their memory, so it needs at least 1 + 2 runs",
    )
    return {"wall": wall, "rows": fetched, "phases": phases}


def memory_figures(table: Table, sampler: Sampler, phases: list[dict]) -> None:
    """Peak RSS per role over the whole benchmark so far, and the run processes' peak in the
    3-month backfill against the rest of the 3 years."""
    for role, (n, mb) in sorted(sampler.by_role().items()):
        if role == "other" and mb < 50:
            continue  # short-lived helpers (pg_ctl, runuser, uv): nothing to report
        target = "< 400 MB" if role in {"run worker", "step process"} else ""
        table.add(f"peak RSS: {role} ({n} processes)", f"{mb:,.0f} MB", target,
                  verdict(mb < 400, mb / 400) if target else "")  # fmt: skip
    peaks = []
    for phase in phases:
        roles = sampler.by_role(phase["started"], phase["ended"])
        peaks.append(max(roles.get(r, (0, 0.0))[1] for r in ("run worker", "step process")))
    if len(peaks) == 2 and min(peaks):
        ratio = max(peaks) / min(peaks)
        table.add("peak RSS of run processes: 3-month backfill vs the other 33 months",
                  f"{peaks[0]:.0f} MB vs {peaks[1]:.0f} MB", "differ < 20%",
                  verdict(ratio < 1.2, ratio))  # fmt: skip


# -- limits and peer ----------------------------------------------------------------------------


def limits(args, table: Table, sim: Simulator, first: date, last: date, wall: float,
           rows: int) -> None:  # fmt: skip
    print("\n== Limits on the same rows", flush=True)
    server_cpu = cpu_seconds(sim.process.pid)
    out = subprocess.run(
        [sys.executable, "-m", "bench.limits", "fetch", "--api", sim.api, "--token-url",
         sim.token_url, "--client-id", CLIENT_ID, "--secret-env", "BENCH_SECRET",
         "--first", first.isoformat(), "--last", last.isoformat()],
        env={**os.environ, "BENCH_SECRET": SECRET}, capture_output=True, text=True, check=True,
    )  # fmt: skip
    fetch = json.loads(out.stdout.strip().splitlines()[-1])
    server_cpu = cpu_seconds(sim.process.pid) - server_cpu
    per_page = server_cpu / fetch["rows"] * 1000 * 1000  # ms per 1,000 rows
    server_rate = fetch["rows"] / server_cpu
    table.add(
        "server limit (simulator, one core): rows served per second of its CPU to the fetch limit",
        f"{server_rate:,.0f} rows/s ({per_page:.1f} ms per 1,000 rows)", "≥ 200,000 rows/s",
        verdict(server_rate >= 200_000, server_rate / 200_000),
        bound="the simulator's own CPU per row served (the fields it projects and serializes "
        "per row); `python -m bench.server_limit` times a page in-process, with the pipeline's "
        "`fields` and with whole rows",
    )  # fmt: skip
    args.fetch_rate = fetch["rows"] / fetch["seconds"]
    table.add(
        "fetch limit (bare httpx + orjson, the pipeline's requests)",
        f"{fetch['seconds']:.1f} s, {fetch['rows']:,} records "
        f"({args.fetch_rate:,.0f}/s), {fetch['requests']:,} requests",
    )
    copy = copy_limit(args.pay_dsn)
    parts = ", ".join(f"{n} {v['rows']:,}" for n, v in copy["tables"].items())
    table.add("load limit (COPY of the rows the import wrote, same tables and indexes)",
              f"{copy['seconds']:.1f} s ({parts})")  # fmt: skip
    limit = max(fetch["seconds"], copy["seconds"])
    ratio = wall / limit
    table.add("full import wall / max(fetch limit, load limit)", f"{ratio:.1f}×", "≤ 2×",
              verdict(ratio <= 2, ratio),
              bound=f"the import's {rows / wall:,.0f} records/s against the fetch limit's "
              f"{args.fetch_rate:,.0f}/s: the per-record work between fetch and COPY; "
              f"{stage_summary(args.stages)}. {profile_top(args)}")  # fmt: skip


def stage_figures(args, table: Table, sim: Simulator, last: date, rate: float) -> None:
    """Each stage alone on the last STAGE_DAYS days of the imported timesheets (bench/stages.py),
    into a fresh Pay database of the same PostgreSQL."""
    from bench.stages import measure

    print(f"\n== Each stage alone, on the last {STAGE_DAYS} days", flush=True)
    window = (max(args.first, last - timedelta(days=STAGE_DAYS - 1)), last + timedelta(days=1))
    engine = create_pay_engine(args.stages_url)
    try:
        stages = measure(engine, client_for(sim), Endpoints(sim.api, sim.token_url), CLIENT_ID,
                         "BENCH_SECRET", ZONE, window)  # fmt: skip
    finally:
        engine.dispose()
    args.stages = stages
    how = {
        "fetch + parse": "AssignarClient.iter_pages, the pipeline's requests",
        "validation": "schemas.validate, chunks of 5,000",
        "staging": "staging.stage_frame into empty staging, chunks of 5,000",
        "Pay load": "load.load_timesheets per 7-day piece, workers and projects linked",
    }
    for name, stage in stages.items():
        value = (f"{stage.rate:,.0f} records/s ({stage.records:,} timesheets in "
                 f"{stage.seconds:.1f} s{'; ' + stage.note if stage.note else ''})")  # fmt: skip
        if name == "validation":
            table.add(f"stage alone: {name} of timesheets ({how[name]})", value,
                      "≥ 250,000/s", verdict(stage.rate >= 250_000, stage.rate / 250_000),
                      bound=f"schemas.validate's own time; cProfile of it on the same records: "
                      f"{stage.profile} (`python bench/bench_schemas.py` times it per "
                      "entity)")  # fmt: skip
        else:
            table.add(f"stage alone: {name} ({how[name]})", value)
    chained = chained_rate(stages)
    table.add("stages chained on one core (1 / Σ 1/rate) vs the full import's throughput",
              f"{chained:,.0f} vs {rate:,.0f} records/s")  # fmt: skip


def peer(args, table: Table, sim: Simulator, first: date, last: date, rate: float) -> None:
    print("\n== dlt rest_api (peer)", flush=True)
    out = subprocess.run(
        [sys.executable, "-m", "bench.peer_dlt", "--api", sim.api, "--token-url", sim.token_url,
         "--client-id", CLIENT_ID, "--secret-env", "BENCH_SECRET", "--postgres", args.peer_url,
         "--first", first.isoformat(), "--last", last.isoformat()],
        env={**os.environ, "BENCH_SECRET": SECRET, "RUNTIME__LOG_LEVEL": "WARNING"},
        capture_output=True, text=True,
    )  # fmt: skip
    if out.returncode != 0:
        table.add("dlt rest_api → PostgreSQL (merge)", f"failed: {out.stderr.strip()[-300:]}")
        return
    result = json.loads(out.stdout.strip().splitlines()[-1])
    dlt_rate = result["rows"] / result["seconds"]
    steps = ", ".join(f"{k} {v:.0f} s" for k, v in result["steps"].items())
    table.add(
        "dlt rest_api → PostgreSQL (merge)",
        f"{result['seconds']:.0f} s, {result['rows']:,} records ({dlt_rate:,.0f}/s; {steps})",
    )
    ratio = rate / dlt_rate
    table.add(
        "full import throughput / dlt's",
        f"{ratio:.1f}×",
        "≥ 10×",
        verdict(ratio >= 10, ratio),
        bound=f"10× dlt is {10 * dlt_rate:,.0f} records/s; here the fetch limit is "
        f"{getattr(args, 'fetch_rate', 0):,.0f}/s and the import {rate:,.0f}/s; "
        + (stage_summary(args.stages) + ". " if getattr(args, "stages", None) else "")
        + profile_top(args),
    )


# -- incremental --------------------------------------------------------------------------------


def sync_once(dagster: DagsterDev, sim: Simulator) -> tuple[float, int, int, dict]:
    before = sim.requests()
    started = time.monotonic()
    run_id = dagster.launch_job(
        "sync_assignar",
        scope_config(["bench"]),
        {OPERATION_TAG: SYNC},
    )
    run = dagster.wait_run(run_id, 600)
    wall = time.monotonic() - started
    token, data = requests_between(before, sim.requests())
    return wall, token, data, run


def make_changes(sim: Simulator, today: date, seed: int = 7) -> Counter:
    """100 changes over the last three weeks: 40 edits, 20 approvals, 20 deletions, 20 new."""
    rng = random.Random(seed)
    client = client_for(sim)
    first = today - timedelta(days=LOOKBACK_DAYS - 2)
    recent = [
        r for page in client.iter_pages(
            "timesheets-expanded", fields=["id", "status", "submitted_date"], page_size=1000,
            filters={"submitted_date__between": [first, today - timedelta(days=1)]})
        for r in page
    ]  # fmt: skip
    approved = [r for r in recent if r["status"].startswith("APPROVED")]
    submitted = [r for r in recent if r["status"] == "SUBMITTED"]
    picked = rng.sample(approved, 80)
    done: Counter = Counter()
    for r in picked[:40]:
        record = sim.control("GET", f"records/timesheets-expanded/{r['id']}")
        minutes = int(record["total_time"].split(":")[0]) * 60 + int(record["total_time"][-2:])
        new = max(15, minutes - 15)
        sim.control("PATCH", f"records/timesheets-expanded/{r['id']}",
                    {"total_time": f"{new // 60:02d}:{new % 60:02d}"})  # fmt: skip
        done["edits"] += 1
    for r in rng.sample(submitted, min(20, len(submitted))):
        sim.control("PATCH", f"records/timesheets-expanded/{r['id']}", {"status": "APPROVED"})
        done["approvals"] += 1
    for r in picked[40:60]:
        sim.control("DELETE", f"records/timesheets-expanded/{r['id']}")
        done["deletions"] += 1
    for r in picked[60:80]:
        record = sim.control("GET", f"records/timesheets-expanded/{r['id']}")
        record.pop("id")
        record.pop("modified_time", None)
        sim.control("POST", "records/timesheets-expanded", record)
        done["new records"] += 1
    return done


def pay_equals_simulator(pay_url: str, sim: Simulator, first: date, last: date) -> str:
    """Staging and Pay against every timesheet of the imported range the simulator holds (by id,
    version and approval)."""
    client = client_for(sim)
    upstream = {
        r["id"]: r
        for page in client.iter_pages("timesheets-expanded", page_size=1000,
                                      fields=["id", "modified_time", "status"],
                                      filters={"submitted_date__between": [first, last]})
        for r in page
    }  # fmt: skip
    engine = create_pay_engine(pay_url)
    with engine.connect() as conn:
        staged = {
            row.assignar_id: row.modified_time
            for row in conn.execute(
                sa.select(
                    t.staging_timesheet.c.assignar_id, t.staging_timesheet.c.modified_time
                ).where(t.staging_timesheet.c.voided_at.is_(None))
            )
        }
        held = set(conn.execute(
            sa.select(t.sync_hold.c.assignar_id).where(t.sync_hold.c.entity == "timesheet")
        ).scalars())  # fmt: skip
        in_pay = set(conn.execute(
            sa.select(t.timesheet.c.source_external_id).where(t.timesheet.c.status != "void")
        ).scalars())  # fmt: skip
    engine.dispose()
    stale = sum(
        1 for i, r in upstream.items()
        if i in staged and staged[i] != datetime.fromisoformat(r["modified_time"])
    )  # fmt: skip
    approved = {i for i, r in upstream.items() if r["status"].startswith("APPROVED")}
    held_ids = {int(h) for h in held}
    missing = len(approved - held_ids - in_pay)
    extra = len(in_pay - approved)
    problems = {
        "missing in staging": len(upstream.keys() - staged.keys()),
        "extra in staging": len(staged.keys() - upstream.keys()),
        "stale in staging": stale,
        "approved missing in Pay": missing,
        "in Pay but not approved upstream": extra,
    }
    bad = {k: v for k, v in problems.items() if v}
    return "equal" if not bad else "NOT equal: " + ", ".join(f"{k} {v}" for k, v in bad.items())


def incremental(table: Table, sim: Simulator, dagster: DagsterDev, pay_url: str, first: date,
                today: date) -> None:  # fmt: skip
    print("\n== Incremental sync of 100 changes", flush=True)
    wall, token, data, run = sync_once(dagster, sim)
    table.add(
        "first sync after the import (lookback listing)",
        f"{wall:.1f} s, {token} token + {data} data requests, {run['status']}",
    )
    wall, token, quiet, run = sync_once(dagster, sim)
    table.add(
        f"quiet sync, {LOOKBACK_DAYS}-day lookback listing every sync",
        f"{wall:.1f} s, {token} token + {quiet} data requests, {run['status']}",
    )
    changes = make_changes(sim, today)
    wall, token, data, run = sync_once(dagster, sim)
    extra = data - quiet
    what = ", ".join(f"{n} {k}" for k, n in changes.items())
    own = run_seconds([run])
    table.add(f"incremental sync of 100 changes ({what}): wall incl. run start-up",
              f"{wall:.1f} s (the run itself {own:.1f} s), 1 run, {run['status']}", "≤ 5 s",
              verdict(wall <= 5, wall / 5, " of 5 s"),
              bound=f"{wall - own:.1f} s of launching and starting the run (Dagster's queue "
              f"and a fresh Python importing Dagster and the project), {own:.1f} s of the run "
              f"itself, mostly the {LOOKBACK_DAYS}-day lookback listing")  # fmt: skip
    table.add("incremental sync: API requests beyond the lookback refresh",
              f"{token} token + {data} data = quiet sync's {quiet} + {extra}", "≤ 10",
              verdict(token + extra <= 10, (token + extra) / 10, " of 10"))  # fmt: skip
    result = pay_equals_simulator(pay_url, sim, first, today)
    table.add("incremental sync: Pay and staging equal the simulator", result, "equal",
              "met" if result == "equal" else "not met")  # fmt: skip


# -- main ---------------------------------------------------------------------------------------


def machine() -> str:
    memory = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory = int(line.split()[1]) // 1024 // 1024
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()  # fmt: skip
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()  # fmt: skip
    return (
        f"{os.cpu_count()} cores, {memory + 1} GiB, {platform.python_implementation()} "
        f"{platform.python_version()}, commit {commit}{' + local changes' if dirty else ''}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scale",
        type=float,
        default=DEFAULT_SCALE,
        help="multiply the large tenant's workers, projects and orders (1: the whole large "
        "tenant, about an hour)",
    )
    parser.add_argument(
        "--days",
        type=int,
        default=DEFAULT_DAYS,
        help="days of history (fewer: shorter; the 3 vs 33 months memory row and the runs "
        "target need 1095)",
    )
    parser.add_argument(
        "--runs-at-once", type=int, default=2, help="Dagster's max_concurrent_runs for the backfill"
    )
    parser.add_argument("--tenants", type=int, default=200, help="connections in the tick bench")
    parser.add_argument("--no-peer", dest="peer", action="store_false", help="skip dlt")
    parser.add_argument("--no-profile", dest="profile", action="store_false")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds for the backfill")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()  # fmt: skip
    started = time.monotonic()
    load_at_start = load()
    table = Table()
    label = f"scale {args.scale:g}, {args.days} days"
    print(f"# Benchmark ({label}) on {machine()}", flush=True)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    today = now.astimezone(ZoneInfo(ZONE)).date()
    first, last = today - timedelta(days=args.days), today
    args.first = first
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        sampler = stack.enter_context(Sampler())
        pg = stack.enter_context(TemporaryPostgres())
        if pg.pid:  # the postmaster detaches from pg_ctl: sample its tree explicitly
            sampler.extra_roots.append(pg.pid)
        args.pay_url = pg.create_database("pay")
        args.pay_dsn = {"host": "127.0.0.1", "port": pg.port, "user": "postgres", "dbname": "pay"}
        # dlt insists on a password; the throw-away cluster trusts loopback and ignores it.
        pg.create_database("peer")
        args.peer_url = f"postgresql://postgres:unused@127.0.0.1:{pg.port}/peer"
        args.stages_url = pg.create_database("stages")
        dagster_url = pg.create_database("dagster")
        print("== Generating the tenant", flush=True)
        sim = stack.enter_context(Simulator(args.scale, args.days, now, Path(tmp) / "sim.log"))
        records = sim.stats()["records"]
        table.add("tenant", f"{records['users']:,} users, {records['projects']:,} projects, "
                  f"{records['timesheets-expanded']:,} timesheets, {records['orders']:,} orders; "
                  f"generated in {sim.generation_seconds:.0f} s")  # fmt: skip
        engine = create_pay_engine(args.pay_url)
        migrate(engine)
        team = bench_team(engine, client_for(sim))
        os.environ["BENCH_SECRET"] = SECRET
        connect(engine, ConnectionRequest("bench", team, OWNER, "au", CLIENT_ID, "BENCH_SECRET",
                                          ZONE, import_orders=True),
                endpoints=Endpoints(sim.api, sim.token_url))  # fmt: skip
        # Weekly at a time that is not now: the hourly schedule leaves the bench alone.
        weekday = (today + timedelta(days=3)).isoweekday()
        change_settings(engine, "bench", SettingsChange(frequency="weekly", weekday=weekday,
                                                        lookback_days=LOOKBACK_DAYS))  # fmt: skip
        engine.dispose()
        home = Path(tmp) / "dagster_home"
        write_instance(home, dagster_url, args.runs_at_once)
        env = {
            **os.environ,
            "ASSIGNAR_API_URL": sim.api,
            "ASSIGNAR_TOKEN_URL": sim.token_url,
            "PAY_DATABASE_URL": args.pay_url,
            "PIPELINE_SENSOR_INTERVAL": "5",
            "PIPELINE_LOOKBACK_EVERY_HOURS": "0",
            "PIPELINE_HISTORY_START": (first - timedelta(days=1)).isoformat(),
        }
        port = free_port()
        dagster = stack.enter_context(DagsterDev(home, port, env, Path(tmp) / "dagster.log"))
        try:
            result = full_import(args, table, sim, dagster, sampler, first, last)
            memory_figures(table, sampler, result["phases"])
            stage_figures(args, table, sim, last, result["rows"] / result["wall"])
            limits(args, table, sim, first, last, result["wall"], result["rows"])
            if args.peer:
                peer(args, table, sim, first, last, result["rows"] / result["wall"])
            incremental(table, sim, dagster, args.pay_url, first, today)
        except Exception:
            print(f"dagster log: {(Path(tmp) / 'dagster.log').read_text()[-4000:]}")
            raise
    print("\n== Validation (pandera) alone", flush=True)
    from bench.bench_schemas import measure

    rates = measure(repeat=3)
    table.add("validation alone on bench_schemas' own tenant (schemas.validate, chunks of 5,000)",
              ", ".join(f"{k} {v:,.0f}/s" for k, v in rates.items()))  # fmt: skip
    if args.tenants:
        from bench.bench_sync import many_tenants

        try:
            many_tenants(table, args.tenants)
        except Exception as exc:  # the other figures stand; the failure is reported with them
            table.add(f"hourly tick over {args.tenants} connections", f"failed: {exc!r}"[:400])
    table.add("benchmark wall time", f"{(time.monotonic() - started) / 60:.1f} min")
    report = (f"\n## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — {label}\n\n{machine()}; load "
              f"average {load_at_start} at the start, {load()} at the end (whatever else runs on "
              f"these cores moves the figures; each row has the load when it was taken)\n\n"
              f"{table.markdown()}\n")  # fmt: skip
    print(report)
    with args.results.open("a") as f:
        f.write(report)
    print(f"appended to {args.results}")


if __name__ == "__main__":
    main()

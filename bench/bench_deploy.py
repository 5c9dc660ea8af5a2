"""Figures for docs/scaling.md, measured on the production topology (deploy/local.py): run start-up
cost, step throughput per Celery worker, Assignar requests per run, and rows and bytes in Pay's
and the staging tables after a bulk import.

Starts its own topology (free ports, a temporary DEPLOY_DIR, a tenant `--scale` times the demo),
connects the demo team, waits for its initial import, runs a bulk import of `--days` days, prints
the figures as markdown and stops everything.

    uv run python -m bench.bench_deploy [--scale 8] [--days 92]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from deploy import operate
from deploy.local import Settings

ROOT = Path(__file__).resolve().parent.parent
RUN_QUERY = """query ($id: ID!) { runOrError(runId: $id) { ... on Run {
  runId creationTime startTime endTime tags { key value }
  stepStats { stepKey startTime endTime status }
  assetMaterializations { assetKey { path } metadataEntries {
    label ... on IntMetadataEntry { intValue } } } } } }"""


def _run(url: str, run_id: str) -> dict:
    return operate.graphql(url, RUN_QUERY, {"id": run_id})["runOrError"]


def _metadata(run: dict, asset: str, label: str) -> int:
    """A ranged run reports one materialization per date, each with the run's totals."""
    return max(
        (
            entry.get("intValue") or 0
            for m in run["assetMaterializations"]
            if m["assetKey"]["path"][-1] == asset
            for entry in m["metadataEntries"]
            if entry["label"] == label
        ),
        default=0,
    )


def _table_sizes(url: str) -> list[tuple[str, int, int]]:
    engine = sa.create_engine(url)
    query = sa.text(
        "SELECT relname, n_live_tup, pg_total_relation_size(relid) FROM pg_stat_user_tables "
        "WHERE n_live_tup > 0 ORDER BY pg_total_relation_size(relid) DESC"
    )
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("ANALYZE"))
            return [tuple(row) for row in conn.execute(query)]
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="8", help="tenant size, times the demo (25 workers)")
    parser.add_argument("--days", type=int, default=92, help="days the bulk import covers")
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="bench-deploy-", dir="/tmp"))
    state.chmod(0o755)
    env = {
        **os.environ,
        "DEPLOY_DIR": str(state),
        "SIMULATOR_SCALE": args.scale,
        "SIMULATOR_NOW": datetime.now().astimezone().strftime("%Y-%m-%dT%H:00:00%z"),
        "PIPELINE_SENSOR_INTERVAL": "5",
        **dict.fromkeys(
            ("DAGSTER_PORT", "CODE_SERVER_PORT", "SIMULATOR_PORT", "POSTGRES_PORT", "REDIS_PORT"),
            "0",
        ),
    }
    started = time.monotonic()
    try:
        subprocess.run([sys.executable, "-m", "deploy.local", "up"], cwd=ROOT, env=env, check=True)
        s = Settings(**json.loads((state / "settings.json").read_text()))
        url = s.webserver_url
        print(f"\ntopology up (with the demo connected) in {time.monotonic() - started:.0f} s")
        deadline = time.monotonic() + 600
        while not any(
            r["status"] == "SUCCESS"
            and {"key": "assignar/operation", "value": "initial_import"} in r["tags"]
            for r in operate.graphql(
                url, "{ runsOrError { ... on Runs { results { status tags { key value } } } } }"
            )["runsOrError"]["results"]
        ):
            assert time.monotonic() < deadline, "initial import did not finish"
            time.sleep(2)
        today = date.fromisoformat(s.simulator_now[:10])
        first = today - timedelta(days=args.days - 1)
        began = time.monotonic()
        backfill_id = operate.launch_bulk_import(url, first, today, ("demo",))
        result = operate.wait_for_backfill(url, backfill_id, timeout=3600)
        wall = time.monotonic() - began
        runs = [_run(url, r["runId"]) for r in result["runs"]]
        report(args, result["status"], wall, runs, _table_sizes(s.pay_url()))
    finally:
        subprocess.run([sys.executable, "-m", "deploy.local", "down"], cwd=ROOT, env=env)
        shutil.rmtree(state, ignore_errors=True)


def report(args, status: str, wall: float, runs: list[dict], tables) -> None:
    queued = [r["startTime"] - r["creationTime"] for r in runs]
    steps = [s for r in runs for s in r["stepStats"] if s["endTime"] and s["startTime"]]
    boot = [min(s["startTime"] for s in r["stepStats"]) - r["startTime"] for r in runs]
    durations = [r["endTime"] - r["startTime"] for r in runs]
    overhead = [
        (r["endTime"] - r["startTime"]) - sum(s["endTime"] - s["startTime"] for s in r["stepStats"])
        for r in runs
    ]
    extract = [s for s in steps if s["stepKey"] == "assignar_timesheets"]
    load = [s for s in steps if s["stepKey"] == "pay_timesheets"]
    fetched = sum(_metadata(r, "assignar_timesheets", "dagster/row_count") for r in runs)
    requests = sum(_metadata(r, "assignar_timesheets", "api_requests") for r in runs)
    extract_s = sum(s["endTime"] - s["startTime"] for s in extract)
    load_s = sum(s["endTime"] - s["startTime"] for s in load)
    print(f"\n## Bulk import, tenant scale {args.scale}, {args.days} days: {status}\n")
    print("| figure | value |\n|---|---|")
    print(f"| backfill wall time | {wall:.0f} s for {len(runs)} ranged runs |")
    print(f"| run created → started (queue wait, launch) | median "
          f"{statistics.median(queued):.1f} s, max {max(queued):.1f} s |")  # fmt: skip
    print(f"| run started → first step started (run worker boot) | median "
          f"{statistics.median(boot):.1f} s |")  # fmt: skip
    print(f"| run duration | median {statistics.median(durations):.1f} s, of which outside "
          f"steps (boot, hand-offs) median {statistics.median(overhead):.1f} s |")  # fmt: skip
    print(f"| timesheets fetched and staged | {fetched} in {extract_s:.1f} s of extract steps "
          f"= {fetched / max(extract_s, 1e-9):.0f} rows/s per worker |")  # fmt: skip
    print(f"| loaded into Pay | {load_s:.1f} s of load steps = "
          f"{fetched / max(load_s, 1e-9):.0f} rows/s per worker |")  # fmt: skip
    print(
        f"| Assignar requests (timesheets) | {requests}, {fetched / max(requests, 1):.0f} "
        "rows per request |"
    )
    print("\n| table | rows | bytes (with indexes) | bytes/row |\n|---|---|---|---|")
    for name, rows, size in tables[:12]:
        print(f"| {name} | {rows} | {size} | {size / max(rows, 1):.0f} |")


if __name__ == "__main__":
    main()

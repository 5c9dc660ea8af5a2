"""Peak memory of a ranged run is flat in the size of its range (the Pipeline issue's target).

Starts the simulator as its own process with a larger tenant, then, for each range, a fresh
Python process that materializes assignar_timesheets + pay_timesheets over that range into a
fresh SQLite Pay database, and prints that process's peak RSS. Target: 90 days within 1.2× of
7 days.

    uv run python bench/ranged_run_memory.py [--workers 400] [--days 120]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta

import httpx

CHILD = r"""
import json, os, resource, sys, time
from datetime import date
import dagster as dg
from assignar_pipeline.connections import ConnectionRequest, connect
from assignar_pipeline.definitions import defs
from assignar_pipeline.pay.database import create_pay_engine, migrate
from assignar_pipeline.pay.seed import seed_demo
from resources import AssignarResource, PayDatabaseResource, SyncScope

url, start, end = sys.argv[1], sys.argv[2], sys.argv[3]
engine = create_pay_engine(url)
migrate(engine)
team = seed_demo(engine)
connect(engine, ConnectionRequest("bench", team, "priya.raman@example.com", "au", "demo-client",
                                  "BENCH_SECRET", "Australia/Sydney"))
assets = [a for a in defs.assets if a.key.path[-1] in {
    "assignar_workers", "assignar_projects", "pay_projects", "pay_employees",
    "assignar_timesheets", "pay_timesheets"}]
started = time.monotonic()
with dg.instance_for_test() as instance:
    result = dg.materialize(
        assets, instance=instance,
        tags={"dagster/asset_partition_range_start": start,
              "dagster/asset_partition_range_end": end},
        resources={"assignar": AssignarResource(), "pay": PayDatabaseResource(url=url),
                   "scope": SyncScope()})
rows = engine.connect().exec_driver_sql("select count(*) from staging_timesheet").scalar()
print(json.dumps({"success": result.success, "seconds": time.monotonic() - started,
                  "rows": rows,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=400)
    parser.add_argument("--days", type=int, default=120)
    args = parser.parse_args()
    port = free_port()
    now = "2025-11-14T07:00:00Z"
    sim = subprocess.Popen(
        [sys.executable, "-m", "assignar_pipeline.cli", "simulator", "serve", "--port", str(port),
         "--workers", str(args.workers), "--days", str(args.days), "--now", now],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(600):
            try:
                httpx.get(f"http://127.0.0.1:{port}/_simulator/stats", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        env = {
            **os.environ,
            "ASSIGNAR_API_URL": f"http://127.0.0.1:{port}/v2",
            "ASSIGNAR_TOKEN_URL": f"http://127.0.0.1:{port}/oauth2/token",
            "BENCH_SECRET": "demo-secret-change-me",
        }
        today = date(2025, 11, 14)
        figures = {}
        for days in (7, 90):
            with tempfile.TemporaryDirectory() as tmp:
                start = (today - timedelta(days=days - 1)).isoformat()
                out = subprocess.run(
                    [sys.executable, "-c", CHILD, f"sqlite:///{tmp}/pay.db", start,
                     today.isoformat()],
                    env=env, capture_output=True, text=True, check=True,
                )  # fmt: skip
                figures[days] = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        sim.terminate()
        sim.wait(10)
    print("| range | timesheets | seconds | peak RSS (MB) |")
    print("|---|---|---|---|")
    for days, f in figures.items():
        print(f"| {days} days | {f['rows']} | {f['seconds']:.1f} | {f['peak_rss_mb']:.0f} |")
    ratio = figures[90]["peak_rss_mb"] / figures[7]["peak_rss_mb"]
    verdict = "met" if ratio <= 1.2 else "NOT met"
    print(f"\n90-day peak / 7-day peak = {ratio:.2f} (target ≤ 1.20: {verdict})")
    own_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"bench process peak RSS: {own_peak:.0f} MB")


if __name__ == "__main__":
    main()

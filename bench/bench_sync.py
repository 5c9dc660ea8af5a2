"""Sync operations at 200 connections: runs per hourly tick, and what a no-change sync costs.

    uv run python bench/bench_sync.py [--connections 200] [--batch-size 10] [--pay-url URL]

1. Ticks: the hourly schedule's plan at every tick of one week (168 ticks, across time zones and
   frequencies); at a few ticks the real `hourly_sync` schedule is evaluated too and must agree.
   Prints due connections and runs per tick; runs must equal ceil(due / batch size).
2. Cost: the `sync_assignar` job, run in batches over every connection, three times: the first
   establishes each connection's cursors (no import ran), the second catches up what the first
   found, the third finds nothing changed. Prints the requests of that third pass per connection,
   from the sync log and from the simulator's own counters.

The simulator serves one tenant: all connections read the same account (same client id), each
with its own client, token and cursor, so their requests are counted separately. That is what a
request count needs; it does not model 200 tenants' data volumes.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from assignar_pipeline.connections import ConnectionRequest, connect
from assignar_pipeline.definitions import defs
from assignar_pipeline.pay import tables as t
from assignar_pipeline.pay.database import create_pay_engine, migrate
from assignar_pipeline.pay.seed import seed_demo
from assignar_pipeline.schedule import batches
from assignar_pipeline.simulator import SimulatorServer, TenantConfig
from assignar_pipeline.sync_settings import read_settings, set_batch_size
from resources import AssignarResource, PayDatabaseResource, SyncScope
from schedules.sync import hourly_sync, plan_sync_tick

ZONES = ("Australia/Sydney", "Australia/Perth", "America/Denver", "Europe/London",
         "Pacific/Auckland", "Asia/Kolkata", "America/New_York")  # fmt: skip
WEEK_START = datetime(2025, 11, 3, tzinfo=UTC)  # a Monday; Sydney and Auckland on DST


def add_connections(engine, count: int) -> None:
    """`c000` through `connect` (Assignar's test), the rest as rows with varied settings."""
    team = seed_demo(engine)
    connect(engine, ConnectionRequest("c000", team, "priya.raman@example.com", "au",
                                      "demo-client", "DEMO_SECRET", ZONES[0]))  # fmt: skip
    with engine.begin() as conn:
        user = conn.execute(
            sa.select(t.pay_user.c.id).where(t.pay_user.c.email == "priya.raman@example.com")
        ).scalar_one()
        rows = []
        for i in range(1, count):
            kind = ("hourly", "hourly", "daily", "daily", "weekly")[i % 5]
            rows.append(
                {
                    "key": f"c{i:03d}",
                    "team_id": team,
                    "region": "au",
                    "client_id": "demo-client",
                    "client_secret_ref": "DEMO_SECRET",
                    "timezone": ZONES[i % len(ZONES)],
                    "import_timesheets": True,
                    "import_orders": i % 2 == 0,
                    "status": "active",
                    "connected_by_user_id": user,
                    "created_at": datetime.now(UTC),
                    "sync_frequency": kind,
                    "sync_time": f"{(i * 7) % 24:02d}:{(i % 4) * 15:02d}",
                    "sync_weekday": i % 7 + 1,
                }
            )
        conn.execute(t.connection.insert(), rows)


def ticks_figure(engine, url: str, size: int) -> None:
    with engine.connect() as conn:
        settings = read_settings(conn)
    print(f"\n== Hourly ticks over one week: {len(settings)} connections, batch size {size}")
    per_tick = []
    for hour in range(24 * 7):
        tick = WEEK_START + timedelta(hours=hour)
        plan = plan_sync_tick(settings, tick, size)
        due = sum(len(b) for b in plan)
        assert len(plan) == math.ceil(due / size), (tick, due, len(plan))
        per_tick.append((tick, due, len(plan)))
    with dg.instance_for_test() as instance:
        for tick, due, runs in per_tick[:: 24 * 2 + 7]:
            with dg.build_schedule_context(
                instance=instance,
                scheduled_execution_time=tick,
                resources={"pay": PayDatabaseResource(url=url)},
            ) as context:
                requests = hourly_sync(context)
            launched = [] if isinstance(requests, dg.SkipReason) else list(requests)
            assert len(launched) == runs, (tick, len(launched), runs)
            print(f"  schedule evaluated at {tick:%a %H:%M} UTC: {due} due → {len(launched)} runs")
    dues = [d for _, d, _ in per_tick]
    runs = [r for _, _, r in per_tick]
    print(f"  due per tick: min {min(dues)}, median {statistics.median(dues)}, max {max(dues)}")
    print(f"  runs per tick: min {min(runs)}, median {statistics.median(runs)}, max {max(runs)}")
    print(f"  every tick: runs == ceil(due / {size}) ✓ ({len(per_tick)} ticks)")
    for tick, due, n in per_tick[:6]:
        print(f"    {tick:%a %H:%M} UTC  due {due:3d}  runs {n:2d}  ceil {math.ceil(due / size)}")


def sync_pass(engine, url: str, keys: list[str], size: int) -> tuple[list[str], float]:
    job = defs.get_job_def("sync_assignar")
    run_ids, started = [], time.monotonic()
    with dg.instance_for_test() as instance:
        for batch in batches(keys, size):
            result = job.execute_in_process(
                instance=instance,
                resources={
                    "assignar": AssignarResource(),
                    "pay": PayDatabaseResource(url=url),
                    "scope": SyncScope(connections=batch),
                },
                tags={"assignar/operation": "sync"},
                raise_on_error=False,
            )
            assert result.success, f"sync of {batch} failed"
            run_ids.append(result.run_id)
    return run_ids, time.monotonic() - started


def cost_figure(engine, url: str, server: SimulatorServer, size: int) -> None:
    with engine.connect() as conn:
        settings = {s.key: s for s in read_settings(conn)}
    keys = sorted(settings)
    print(f"\n== Sync cost: {len(keys)} connections in runs of {size}")
    for label in ("first sync (cursors established)", "second sync (catches up)"):
        _, seconds = sync_pass(engine, url, keys, size)
        print(f"  {label}: {seconds:.1f} s")
    before = server.simulator.stats()["requests"]
    run_ids, seconds = sync_pass(engine, url, keys, size)
    after = server.simulator.stats()["requests"]
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.connection.c.key, t.sync_log.c.entity, t.sync_log.c.api_requests,
                      t.sync_log.c.inserted, t.sync_log.c.updated, t.sync_log.c.voided)
            .join(t.connection, t.connection.c.id == t.sync_log.c.connection_id)
            .where(t.sync_log.c.run_id.in_(run_ids))
        ).all()  # fmt: skip
    per_connection: dict[str, int] = defaultdict(int)
    per_entity: dict[str, list[int]] = defaultdict(list)
    for key, entity, requests, *changed in rows:
        per_connection[key] += requests
        per_entity[entity].append(requests)
        assert not any(changed), f"{key} {entity} changed {changed} although nothing did"
    served = {
        route: sum(codes.values()) - sum(before.get(route, {}).values())
        for route, codes in after.items()
    }
    token = served.pop("POST /oauth2/token", 0)
    data = sum(served.values())
    by_kind: dict[str, list[int]] = defaultdict(list)
    for key, total in per_connection.items():
        by_kind["+".join(settings[key].entities)].append(total)
    print(f"  third sync (nothing changed): {seconds:.1f} s, nothing written to Pay or staging")
    print(f"  simulator served {token + data} requests: {token} token, {data} data "
          f"({data / len(keys):.2f} data requests per connection)")  # fmt: skip
    for route, n in sorted(served.items()):
        if n:
            print(f"    {route}: {n}")
    for kind, totals in sorted(by_kind.items()):
        entities = len(kind.split("+"))
        print(f"  {kind:22s} {len(totals):3d} connections: {max(totals)} requests each at most "
              f"= 1 token + {max(totals) - 1} data ({(max(totals) - 1) / entities:.0f} per "
              f"entity: the delta; the lookback is not due)")  # fmt: skip
    worst = max(max(v) - (1 if e == "timesheets" else 0) for e, v in per_entity.items())
    print(f"  data requests per connection and synced entity, at most: {worst}")
    print(f"  sync-log rows of that pass: {dict(Counter(e for _, e, *_ in rows))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--pay-url", help="Pay database (default: a SQLite file in a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, SimulatorServer(config=TenantConfig()) as server:
        os.environ.update(
            ASSIGNAR_API_URL=server.api_url,
            ASSIGNAR_TOKEN_URL=server.token_url,
            DEMO_SECRET="demo-secret-change-me",  # noqa: S106 (the simulator's demo secret)
            DAGSTER_HOME=tmp,
        )
        url = args.pay_url or f"sqlite:///{Path(tmp) / 'pay.db'}"
        engine = create_pay_engine(url)
        migrate(engine)
        add_connections(engine, args.connections)
        set_batch_size(engine, args.batch_size)
        ticks_figure(engine, url, args.batch_size)
        cost_figure(engine, url, server, args.batch_size)
        engine.dispose()


if __name__ == "__main__":
    main()

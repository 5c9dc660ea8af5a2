"""Sync operations at 200 connections: runs per hourly tick, and what a no-change sync costs.

    uv run python bench/bench_sync.py [--connections 200] [--batch-size 10] [--pay-url URL]

1. Ticks: the hourly schedule's plan at every tick of one week (168 ticks, across time zones and
   frequencies); at a few ticks the real `hourly_sync` schedule is evaluated too and must agree.
   Prints due connections and runs per tick; runs must equal ceil(due / batch size).
2. Cost: the `sync_assignar` job, run in batches over every connection: the first pass
   establishes each connection's cursors (no import ran), the second catches up what the first
   found, the third finds nothing changed, and a fourth follows changes in 1% of the tenants.
   Prints the requests of the last two passes per connection, from the sync log and from the
   simulator's own counters.

The simulator serves the many-tenant setting: one small tenant (20 workers) per connection, each
its own Assignar account (client id), so a change in one tenant is seen by that connection only.
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
import httpx
import sqlalchemy as sa

from assignar_pipeline.connections import ConnectionRequest, connect
from assignar_pipeline.definitions import defs
from assignar_pipeline.pay import tables as t
from assignar_pipeline.pay.database import create_pay_engine, migrate
from assignar_pipeline.pay.seed import seed_demo
from assignar_pipeline.runs import OPERATION_TAG, SYNC
from assignar_pipeline.schedule import batches
from assignar_pipeline.simulator import Simulator, SimulatorServer, TenantConfig
from assignar_pipeline.sync_settings import read_settings, set_batch_size
from resources import AssignarResource, PayDatabaseResource, SyncScope
from schedules.sync import hourly_sync, plan_sync_tick

ZONES = ("Australia/Sydney", "Australia/Perth", "America/Denver", "Europe/London",
         "Pacific/Auckland", "Asia/Kolkata", "America/New_York")  # fmt: skip
WEEK_START = datetime(2025, 11, 3, tzinfo=UTC)  # a Monday; Sydney and Auckland on DST


def tenant_id(i: int) -> str:
    return f"tenant-{i:03d}"


def tenants(count: int, now: datetime) -> dict[str, Simulator]:
    """The many-tenant setting: `count` small tenants (20 workers each), one account each."""
    return {
        tenant_id(i): Simulator(
            TenantConfig(seed=i + 1, workers=20, projects=3, days=35, orders=40, now=now),
            client_id=tenant_id(i),
        )
        for i in range(count)
    }


def add_connections(engine, count: int) -> None:
    """`c000` through `connect` (Assignar's test), the rest as rows with varied settings."""
    team = seed_demo(engine)
    connect(engine, ConnectionRequest("c000", team, "priya.raman@example.com", "au",
                                      tenant_id(0), "DEMO_SECRET", ZONES[0]))  # fmt: skip
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
                    "client_id": tenant_id(i),
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


def ticks_figure(engine, url: str, size: int) -> dict:
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
    return {"ticks": len(per_tick), "due": (min(dues), max(dues)), "runs": (min(runs), max(runs))}


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
                tags={OPERATION_TAG: SYNC},
                run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
                raise_on_error=False,
            )
            assert result.success, f"sync of {batch} failed"
            run_ids.append(result.run_id)
    return run_ids, time.monotonic() - started


def served(server: SimulatorServer) -> Counter:
    """Requests served so far by every tenant, per route."""
    stats = httpx.get(f"{server.control_url}/stats", timeout=30).json()
    return Counter({route: sum(codes.values()) for route, codes in stats["requests"].items()})


def measured_pass(engine, url, server, keys, size, settings) -> dict:
    """One sync pass over every connection: requests per connection (sync log and simulator)."""
    before = served(server)
    run_ids, seconds = sync_pass(engine, url, keys, size)
    diff = served(server) - before
    token = diff.pop("POST /oauth2/token", 0)
    data = sum(diff.values())
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.connection.c.key, t.sync_log.c.entity, t.sync_log.c.api_requests,
                      t.sync_log.c.quarantined, t.sync_log.c.inserted, t.sync_log.c.updated,
                      t.sync_log.c.voided)
            .join(t.connection, t.connection.c.id == t.sync_log.c.connection_id)
            .where(t.sync_log.c.run_id.in_(run_ids))
        ).all()  # fmt: skip
    per_connection: dict[str, int] = defaultdict(int)
    changed: set[str] = set()
    quarantined: set[str] = set()
    for key, _entity, requests, held_back, *counts in rows:
        per_connection[key] += requests
        if any(counts):
            changed.add(key)
        if held_back:
            quarantined.add(key)
    by_kind: dict[str, list[int]] = defaultdict(list)
    for key, total in per_connection.items():
        by_kind["+".join(settings[key].entities)].append(total)
    print(f"  {seconds:.1f} s, {len(run_ids)} runs; simulator served {token} token + {data} data "
          f"requests ({(token + data) / len(keys):.2f} per connection)")  # fmt: skip
    for route, n in sorted(diff.items()):
        if n:
            print(f"    {route}: {n}")
    for kind, totals in sorted(by_kind.items()):
        print(f"  {kind:22s} {len(totals):3d} connections: at most {max(totals)} requests "
              f"(1 token + {max(totals) - 1} data)")  # fmt: skip
    return {"seconds": seconds, "runs": len(run_ids), "token": token, "data": data,
            "max_per_connection": max(per_connection.values()), "by_kind": dict(by_kind),
            "changed": changed, "quarantined": quarantined,
            "per_connection": dict(per_connection)}  # fmt: skip


def change_tenants(server: SimulatorServer, keys: list[str], share: float) -> list[str]:
    """Edit two timesheets in `share` of the tenants (the first ones); return their keys.

    Each edit takes 15 minutes off the hours worked, so it stays valid whatever the shift: a fixed
    value (it was 07:15) exceeds a short shift, such as the 6-hour weekend shifts that are the
    newest approved ones early in a week, and is rightly quarantined instead of staged.
    """
    picked = keys[: max(1, math.ceil(len(keys) * share))]
    for key in picked:
        sim = server.tenants[tenant_id(int(key[1:]))]
        approved = [r for r in sim.records("timesheets-expanded")
                    if r["status"].startswith("APPROVED")][-2:]  # fmt: skip
        for record in approved:
            hours, mins = map(int, record["total_time"].split(":"))
            shorter = max(15, hours * 60 + mins - 15)
            sim.update("timesheets-expanded", record["id"],
                       {"total_time": f"{shorter // 60:02d}:{shorter % 60:02d}"})  # fmt: skip
    return picked


def cost_figure(engine, url: str, server: SimulatorServer, size: int) -> dict:
    with engine.connect() as conn:
        settings = {s.key: s for s in read_settings(conn)}
    keys = sorted(settings)
    print(f"\n== Sync cost: {len(keys)} connections (one tenant each) in runs of {size}")
    for label in ("first sync (cursors established)", "second sync (catches up)"):
        _, seconds = sync_pass(engine, url, keys, size)
        print(f"  {label}: {seconds:.1f} s")
    print("  third sync, nothing changed:")
    quiet = measured_pass(engine, url, server, keys, size, settings)
    assert not quiet["changed"], f"{sorted(quiet['changed'])} changed although nothing did"
    picked = change_tenants(server, keys, 0.01)
    print(f"  fourth sync, {len(picked)} tenants changed ({', '.join(picked)}):")
    busy = measured_pass(engine, url, server, keys, size, settings)
    assert busy["changed"] == set(picked), (busy["changed"], picked, "quarantined:",
                                            sorted(busy["quarantined"]))  # fmt: skip
    return {"connections": len(keys), "size": size, "quiet": quiet, "busy": busy,
            "picked": picked}  # fmt: skip


def run_bench(connections: int, size: int, pay_url: str | None = None) -> tuple[dict, dict]:
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    with (
        tempfile.TemporaryDirectory() as tmp,
        SimulatorServer(tenants=tenants(connections, now)) as server,
    ):
        os.environ.update(
            ASSIGNAR_API_URL=server.api_url,
            ASSIGNAR_TOKEN_URL=server.token_url,
            DEMO_SECRET="demo-secret-change-me",  # noqa: S106 (the simulator's demo secret)
            DAGSTER_HOME=tmp,
        )
        url = pay_url or f"sqlite:///{Path(tmp) / 'pay.db'}"
        engine = create_pay_engine(url)
        migrate(engine)
        add_connections(engine, connections)
        set_batch_size(engine, size)
        ticks = ticks_figure(engine, url, size)
        cost = cost_figure(engine, url, server, size)
        engine.dispose()
    return ticks, cost


def many_tenants(table, connections: int, size: int = 10) -> None:
    """`make bench`'s rows for the hourly tick over many tenants."""
    ticks, cost = run_bench(connections, size)
    quiet, busy = cost["quiet"], cost["busy"]
    table.add(f"hourly tick plan over one week, {connections} connections",
              f"{ticks['ticks']} ticks: {ticks['due'][0]}–{ticks['due'][1]} due, "
              f"{ticks['runs'][0]}–{ticks['runs'][1]} runs, always ceil(due / {size})")  # fmt: skip
    runs_target = math.ceil(connections / size)
    table.add(f"quiet tick, all {connections} syncing: runs", f"{quiet['runs']} runs in "
              f"{quiet['seconds']:.0f} s (in-process, one after another)", f"≤ {runs_target}",
              verdict_text(quiet["runs"] <= runs_target, quiet["runs"] / runs_target))  # fmt: skip
    kinds = "; ".join(f"{k}: {max(v)} ({len(v)} connections)"
                      for k, v in sorted(quiet["by_kind"].items()))  # fmt: skip
    # The allowance is per connection: 1 token + 1 request per entity it syncs.
    worst = max(max(v) / (2 + k.count("+")) for k, v in quiet["by_kind"].items())
    table.add("quiet tick: requests per tenant (1 token + 1 per synced entity)",
              f"{quiet['token']} token + {quiet['data']} data in all; at most {kinds}",
              "≤ 1 + entities", verdict_text(worst <= 1, worst))  # fmt: skip
    changed = [busy["per_connection"][k] for k in cost["picked"]]
    others = max(v for k, v in busy["per_connection"].items() if k not in cost["picked"])
    table.add(
        f"tick with 1% of tenants changed ({len(cost['picked'])})",
        f"{busy['runs']} runs, {busy['token']} token + {busy['data']} data requests; "
        f"changed tenants {max(changed)} requests each, the others at most {others}",
    )


def verdict_text(ok: bool, ratio: float) -> str:
    return f"{'met' if ok else 'not met'} ({ratio:.2f}×)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--pay-url", help="Pay database (default: a SQLite file in a temp dir)")
    args = parser.parse_args()
    run_bench(args.connections, args.batch_size, args.pay_url)


if __name__ == "__main__":
    main()

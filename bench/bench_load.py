"""Timesheets and orders loaded per second from staging into Pay, on SQLite and PostgreSQL.

`python -m bench.bench_load [--size N] [--orders M] [--days D]` stages N timesheets of a D-day
window for a Pay team that knows every worker and project (linked, with employee, project and team
rates, and Assignar rates that agree), then times `load_timesheets` three ways: the first load
(inserts), a re-run that changes nothing, and a load after a tenth of the timesheets changed
upstream. Then the same three for `load_orders` on M staged orders of the same window (a tenth
without a project, the rest on linked projects, two or three lines each); `--size 0` times orders
alone.

The staged rows are made here, not fetched from the simulator: this measures the loader alone
(fetching, validating and staging have their own benchmarks). Run it with `PYTHONPATH` pointing
at another checkout to measure that checkout's loader on the same data.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import random
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

from assignar_pipeline.load import LoadCounts, load_orders, load_timesheets
from assignar_pipeline.pay import tables as t
from assignar_pipeline.pay.database import create_pay_engine

NOW = datetime(2026, 11, 30, 7, tzinfo=UTC)
FIRST_DAY = date(2026, 11, 2)
STATUSES = ["APPROVED"] * 18 + ["APPROVED_WITH_PAY_RATES", "SUBMITTED"]


def _hash(*parts) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def build(engine, size: int, days: int = 7, seed: int = 1, variety: bool = False) -> int:
    """A team, its employees, projects, rates and links, and `size` staged timesheets; returns
    the connection id. `variety` adds what the per-record code decides (missing links, workers
    not paid through Pay, differing Assignar rates, deletions, fractional seconds)."""
    rnd = random.Random(seed)
    workers = max(10, size // 20)
    projects = max(5, size // 200)
    with engine.begin() as conn:

        def add(table, **values):
            return conn.execute(
                table.insert().values(**values).returning(*table.primary_key)
            ).first()[0]

        team = add(t.team, name="Bench", account_type="team", country="AU", currency="AUD",
                   timezone="Australia/Sydney")  # fmt: skip
        user = add(t.pay_user, email="owner@example.com", full_name="Owner")
        connection = add(
            t.connection, key="bench", team_id=team, region="au", client_id="c",
            client_secret_ref="env:BENCH",  # noqa: S106 - a reference, and a made-up one
            timezone="Australia/Sydney", import_timesheets=True,
            import_orders=True, status="active", connected_by_user_id=user, created_at=NOW,
        )  # fmt: skip
        conn.execute(t.team_feature.insert().values(team_id=team, feature="job_costing",
                                                    enabled=True))  # fmt: skip
        ordinary = add(t.pay_code, team_id=team, code="ORD", name="Ordinary", kind="ordinary")
        employees = conn.execute(
            t.employee.insert().returning(t.employee.c.id, sort_by_parameter_order=True),
            [{"team_id": team, "employee_number": f"E{i}", "first_name": f"F{i}",
              "last_name": f"L{i}", "status": "active", "origin": "manual"}
             for i in range(workers)],
        ).scalars().all()  # fmt: skip
        pay_projects = conn.execute(
            t.project.insert().returning(t.project.c.id, sort_by_parameter_order=True),
            [{"team_id": team, "code": f"P{i}", "name": f"Project {i}", "status": "active",
              "origin": "manual"} for i in range(projects)],
        ).scalars().all()  # fmt: skip
        rates = [{"employee_id": None, "project_id": None, "rate": Decimal("40.00"),
                  "effective_from": date(2025, 1, 1), "effective_to": None}]  # fmt: skip
        for i, employee_id in enumerate(employees):
            if i % 2:  # an employee rate that changes mid-window
                middle = FIRST_DAY + timedelta(days=days // 2)
                rates += [
                    {"employee_id": employee_id, "project_id": None, "rate": Decimal("44.80"),
                     "effective_from": date(2025, 7, 1), "effective_to": middle},
                    {"employee_id": employee_id, "project_id": None, "rate": Decimal("46.1250"),
                     "effective_from": middle, "effective_to": None},
                ]  # fmt: skip
            if i % 7 == 0:
                rates.append({"employee_id": employee_id, "project_id": pay_projects[0],
                              "rate": Decimal("52.00"), "effective_from": date(2025, 7, 1),
                              "effective_to": None})  # fmt: skip
        for project_id in pay_projects[1::3]:
            rates.append({"employee_id": None, "project_id": project_id, "rate": Decimal("41.5"),
                          "effective_from": date(2025, 7, 1), "effective_to": None})  # fmt: skip
        conn.execute(
            t.pay_rate.insert(),
            [{**r, "team_id": team, "pay_code_id": ordinary, "currency": "AUD", "source": "seed",
              "scope_key": f"e={r['employee_id'] or ''};p={r['project_id'] or ''}"}
             for r in rates],
        )  # fmt: skip
        linked_workers = workers - (3 if variety else 0)  # the last ones: no link (held)
        conn.execute(
            t.integration_link.insert(),
            [{"connection_id": connection, "entity": "worker", "external_id": 1000 + i,
              "pay_id": None if variety and i == 0 else employee_id, "match_rule": "exact_number"}
             for i, employee_id in enumerate(employees[:linked_workers])]
            + [{"connection_id": connection, "entity": "project", "external_id": 200 + i,
                "pay_id": project_id, "match_rule": "exact_code"}
               for i, project_id in enumerate(pay_projects)],
        )  # fmt: skip
        # Task 1's rate is within the team's tolerance of every Pay rate, task 2 has none; with
        # variety, task 3's differs from every Pay rate (a Rate Difference conflict).
        conn.execute(t.reconcile_setting.insert().values(
            connection_id=connection, project_name_threshold=Decimal("0.9"),
            worker_name_threshold=Decimal("0.9"), rate_tolerance=Decimal("15"),
        ))  # fmt: skip
        task_rates = [(1, Decimal("40.00"))] + ([(3, Decimal("10.00"))] if variety else [])
        conn.execute(
            t.assignar_rate.insert(),
            [{"connection_id": connection, "task_assignar_id": task, "pay_code": "ORD",
              "rate": rate, "task_name": f"Task {task}", "group_assignar_id": 600 + task,
              "group_name": "G"} for task, rate in task_rates],
        )  # fmt: skip
        if size:
            conn.execute(t.staging_timesheet.insert(), [
                _staged(connection, i, rnd, workers, projects, days, variety) for i in range(size)
            ])  # fmt: skip
    return connection


def _staged(connection, i, rnd, workers, projects, days, variety) -> dict:
    day = FIRST_DAY + timedelta(days=rnd.randrange(days))
    minutes = rnd.randrange(240, 720)
    start = datetime.combine(day, datetime.min.time(), UTC) - timedelta(hours=3)
    if variety and i % 5 == 0:
        start += timedelta(seconds=rnd.randrange(60), microseconds=rnd.randrange(1_000_000))
    status = rnd.choice(STATUSES) if variety else "APPROVED"
    return {
        "connection_id": connection,
        "assignar_id": 500_000 + i,
        "work_date": day,
        "user_assignar_id": 1000 + rnd.randrange(workers),
        "project_assignar_id": None if i % 10 == 0 else 200 + rnd.randrange(projects),
        "task_assignar_id": 1 + rnd.randrange(3 if variety else 2),
        "start_at": start,
        "end_at": start + timedelta(minutes=minutes + 30, seconds=rnd.randrange(2) * 30),
        "timezone": "Australia/Sydney",
        "total_minutes": minutes,
        "status": status,
        "processed": False,
        "lines": [{"ref": 9_000_000 + 2 * i, "cost_code": "ACT-100", "minutes": minutes // 2},
                  {"ref": 9_000_001 + 2 * i, "cost_code": None, "minutes": minutes - minutes // 2}],
        "modified_time": NOW,
        "fetched_at": NOW,
        "content_hash": _hash(i, minutes, status),
        "voided_at": NOW if variety and i % 23 == 0 else None,
    }  # fmt: skip


def stage_orders(engine, connection: int, size: int, days: int, seed: int = 3) -> None:
    """`size` staged orders of the window: a tenth without a project, the rest on linked ones."""
    rnd = random.Random(seed)
    with engine.begin() as conn:
        projects = conn.execute(
            sa.select(t.integration_link.c.external_id).where(
                t.integration_link.c.connection_id == connection,
                t.integration_link.c.entity == "project",
            )
        ).scalars().all()  # fmt: skip
        rows = []
        for i in range(size):
            lines = [{"cost_code": f"CC-{n}", "description": f"Item {n}",
                      "quantity": f"{rnd.randrange(1, 100_000) / 100:.2f}", "unit": "hr"}
                     for n in range(2 + i % 2)]  # fmt: skip
            day = FIRST_DAY + timedelta(days=rnd.randrange(days))
            rows.append({
                "connection_id": connection, "assignar_id": 700_000 + i, "work_date": day,
                "end_date": day + timedelta(days=5), "job_number": f"J{i}", "po_number": f"PO{i}",
                "project_assignar_id": None if i % 10 == 0 else rnd.choice(projects),
                "client_assignar_id": None, "status_id": 2, "description": f"Order {i}",
                "active": True, "lines": lines, "modified_time": NOW, "fetched_at": NOW,
                "content_hash": _hash("order", i), "voided_at": None,
            })  # fmt: skip
        conn.execute(t.staging_order.insert(), rows)


def change(engine, connection: int, share: float, seed: int = 2, table=t.staging_timesheet) -> int:
    """Edit `share` of the staged timesheets (or orders) upstream (new content hash; timesheets
    also get new minutes)."""
    rnd = random.Random(seed)
    with engine.begin() as conn:
        ids = (
            conn.execute(sa.select(table.c.assignar_id).where(table.c.connection_id == connection))
            .scalars()
            .all()
        )
        picked = rnd.sample(ids, int(len(ids) * share))
        edits = {"content_hash": sa.bindparam("hash")}
        if table is t.staging_timesheet:
            edits["total_minutes"] = table.c.total_minutes + 15
        conn.execute(
            table.update()
            .where(table.c.connection_id == connection, table.c.assignar_id == sa.bindparam("id"))
            .values(edits),
            [{"id": i, "hash": _hash("edited", i)} for i in picked],
        )
    return len(picked)


def timed_load(
    engine, connection_id: int, days: int, loader=load_timesheets
) -> tuple[LoadCounts, float]:
    with engine.connect() as conn:
        connection = conn.execute(
            sa.select(t.connection).where(t.connection.c.id == connection_id)
        ).one()
    window = (FIRST_DAY, FIRST_DAY + timedelta(days=days))
    started = time.perf_counter()
    with engine.begin() as conn:
        counts = loader(conn, connection, NOW, window)
    return counts, time.perf_counter() - started


def measure(url: str, size: int, days: int, orders: int = 0) -> list[tuple[str, str, int, float]]:
    engine = create_pay_engine(url)
    t.metadata.create_all(engine)
    try:
        connection = build(engine, size, days)
        if orders:
            stage_orders(engine, connection, orders, days)
        figures = []
        for entity, loader, table, count in (
            ("timesheets", load_timesheets, t.staging_timesheet, size),
            ("orders", load_orders, t.staging_order, orders),
        ):
            if not count:
                continue
            for label in ("first load", "re-run, nothing changed", "after 10% edited"):
                if label.startswith("after"):
                    change(engine, connection, 0.1, table=table)
                counts, seconds = timed_load(engine, connection, days, loader)
                loaded = counts.inserted + counts.updated + counts.unchanged
                figures.append((entity, label, loaded, seconds))
        return figures
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=50_000)
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--postgres", action="store_true", help="also on a temporary PostgreSQL")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        urls = [("sqlite", f"sqlite:///{Path(tmp) / 'pay.db'}")]
        if args.postgres:
            sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
            from tests.support.postgres import TemporaryPostgres

            server = stack.enter_context(TemporaryPostgres())
            urls.append(("postgresql", server.create_database("bench_load")))
        for name, url in urls:
            for entity, label, records, seconds in measure(url, args.size, args.days, args.orders):
                print(f"{name:10} {label:26} {records:>8} {entity:10} {seconds:7.2f} s "
                      f"{records / seconds:>9,.0f} /s", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()

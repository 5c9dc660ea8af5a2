"""Driving sync operations in tests: the sync job on a real instance, connections without API."""

from __future__ import annotations

import dagster as dg
import sqlalchemy as sa

from assignar_pipeline.definitions import defs
from assignar_pipeline.pay import tables as t
from assignar_pipeline.runs import OPERATION_TAG, SYNC
from resources import AssignarResource, PayDatabaseResource, SyncScope
from tests.support.pipeline import Pipeline


def run_sync(
    pipeline: Pipeline, connections: list[str] | None = None, **assignar
) -> dg.ExecuteInProcessResult:
    """One run of the `sync_assignar` job, as the schedule launches it."""
    job = defs.get_job_def("sync_assignar")
    return job.execute_in_process(
        instance=pipeline.instance,
        resources={
            "assignar": AssignarResource(**assignar),
            "pay": PayDatabaseResource(url=pipeline.url),
            "scope": SyncScope(connections=connections or []),
        },
        tags={OPERATION_TAG: SYNC},
        raise_on_error=False,
    )


def connection_id(engine, key: str) -> int:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(t.connection.c.id).where(t.connection.c.key == key)
        ).scalar_one()


def add_connection(engine, key: str, timezone: str = "Australia/Sydney", **columns) -> int:
    """A connection row for the demo team without Assignar's test (schedules need no API)."""
    from datetime import UTC, datetime

    from assignar_pipeline.pay.seed import seed_demo

    team_id = seed_demo(engine)
    with engine.begin() as conn:
        user = conn.execute(
            sa.select(t.pay_user.c.id).where(t.pay_user.c.email == "priya.raman@example.com")
        ).scalar_one()
        values = {
            "key": key,
            "team_id": team_id,
            "region": "au",
            "client_id": "demo-client",
            "client_secret_ref": "DEMO_SECRET",
            "timezone": timezone,
            "import_timesheets": True,
            "import_orders": False,
            "status": "active",
            "connected_by_user_id": user,
            "created_at": datetime.now(UTC),
            **columns,
        }
        return conn.execute(
            t.connection.insert().values(values).returning(t.connection.c.id)
        ).scalar_one()

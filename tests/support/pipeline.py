"""Driving the real pipeline in tests: a seeded Pay database, connections to the simulator,
Dagster runs on a real instance, and Assignar's truth to compare Pay against."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import dagster as dg
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from assignar_pipeline.connections import ConnectionRequest, connect
from assignar_pipeline.definitions import defs
from assignar_pipeline.load import APPROVED_STATUSES
from assignar_pipeline.pay import tables as t
from assignar_pipeline.pay.seed import seed_demo
from assignar_pipeline.simulator import DEFAULT_CLIENT_ID, DEFAULT_NOW, SimulatorServer
from resources import AssignarResource, PayDatabaseResource, SyncScope
from tests.support.pay import table_checksums

DEMO_OWNER = "priya.raman@example.com"
#: The simulator's "today": the demo tenant's timesheets end here.
TODAY = DEFAULT_NOW.date()
LAST_4_WEEKS = (TODAY - timedelta(days=27), TODAY + timedelta(days=1))
BOOKKEEPING = {"sync_log", "sync_state", "sync_conflict_seen"}  # when, not what
#: Sync operations' bookkeeping: cursors, runs, settings, rate limit, queued imports, notifications.
BOOKKEEPING |= {"sync_cursor", "sync_run", "sync_setting", "rate_limit_bucket", "bulk_import"}
BOOKKEEPING |= {"notification", "alert_state"}


@dataclass
class Pipeline:
    """One Pay database with the demo team connected to one simulator."""

    engine: Engine
    simulator: SimulatorServer
    team_id: int
    instance: dg.DagsterInstance

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=False)

    def connect(self, key: str, secret_env: str, *, team_id: int | None = None, **options) -> int:
        request = ConnectionRequest(
            key=key,
            team_id=team_id or self.team_id,
            user_email=DEMO_OWNER,
            region="au",
            client_id=DEFAULT_CLIENT_ID,
            client_secret_ref=secret_env,
            timezone="Australia/Sydney",
            **options,
        )
        return connect(self.engine, request)

    def materialize(
        self,
        selection: list[str] | None = None,
        window: tuple[date, date] | None = LAST_4_WEEKS,
        connections: list[str] | None = None,
        assignar: AssignarResource | None = None,
        **scope: Any,
    ) -> dg.ExecuteInProcessResult:
        """Run assets as the UI would: a ranged run over `window` (end exclusive)."""
        assets = [a for a in defs.assets if selection is None or a.key.path[-1] in selection]
        tags = {}
        if window is not None and any(a.partitions_def for a in assets):
            tags = {
                "dagster/asset_partition_range_start": window[0].isoformat(),
                "dagster/asset_partition_range_end": (window[1] - timedelta(days=1)).isoformat(),
            }
        return dg.materialize(
            assets,
            instance=self.instance,
            tags=tags,
            resources={
                "assignar": assignar or AssignarResource(),
                "pay": PayDatabaseResource(url=self.url),
                "scope": SyncScope(connections=connections or [], **scope),
            },
            raise_on_error=False,
        )

    def connection_id(self, key: str) -> int:
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(t.connection.c.id).where(t.connection.c.key == key)
            ).scalar()

    def checksums(self) -> dict[str, str]:
        """Checksums of every Pay, link, staging and hold table (not the run bookkeeping)."""
        return {k: v for k, v in table_checksums(self.engine).items() if k not in BOOKKEEPING}

    def count(self, table: sa.Table, *where: Any) -> int:
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(sa.func.count()).select_from(table).where(*where)
            ).scalar()


def add_team(engine, name: str) -> int:
    """Another Pay team with the demo owner as its owner and the demo employees copied, so that
    employee numbers and emails coincide across teams."""
    with engine.begin() as conn:
        team_id = conn.execute(
            t.team.insert()
            .values(
                name=name,
                account_type="team",
                country="AU",
                currency="AUD",
                timezone="Australia/Sydney",
            )
            .returning(t.team.c.id)
        ).scalar_one()
        for feature in ("integrations", "job_costing"):
            conn.execute(
                t.team_feature.insert().values(team_id=team_id, feature=feature, enabled=True)
            )
        owner = conn.execute(sa.select(t.team_role.c.id).where(t.team_role.c.key == "owner"))
        user = conn.execute(sa.select(t.pay_user.c.id).where(t.pay_user.c.email == DEMO_OWNER))
        conn.execute(
            t.team_member.insert().values(
                team_id=team_id, user_id=user.scalar(), role_id=owner.scalar()
            )
        )
        for e in conn.execute(sa.select(t.employee).where(t.employee.c.team_id == 1)).all():
            values = {c: getattr(e, c) for c in ("employee_number", "first_name", "last_name")}
            conn.execute(
                t.employee.insert().values(
                    team_id=team_id, email=e.email, status="active", origin="manual", **values
                )
            )
    return team_id


def make_pipeline(engine: Engine, simulator: SimulatorServer, instance, monkeypatch) -> Pipeline:
    monkeypatch.setenv("ASSIGNAR_API_URL", simulator.api_url)
    monkeypatch.setenv("ASSIGNAR_TOKEN_URL", simulator.token_url)
    monkeypatch.setenv("DEMO_SECRET", "demo-secret-change-me")
    team_id = seed_demo(engine)
    pipeline = Pipeline(engine, simulator, team_id, instance)
    pipeline.connect("demo", "DEMO_SECRET", import_orders=True)
    return pipeline


def simulator_timesheets(simulator: SimulatorServer, window: tuple[date, date]) -> dict[int, Any]:
    """Assignar's truth for a window: its timesheets by id (the shift date is submitted_date)."""
    low, high = window[0].isoformat(), window[1].isoformat()
    return {
        r["id"]: r
        for r in simulator.simulator.records("timesheets-expanded")
        if low <= r["submitted_date"] < high
    }


def minutes(hhmm: str) -> int:
    hours, mins = hhmm.split(":")
    return int(hours) * 60 + int(mins)


def staged_timesheets(engine: Engine, connection_id: int, window: tuple[date, date]) -> dict:
    s = t.staging_timesheet
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(s).where(
                s.c.connection_id == connection_id,
                s.c.work_date >= window[0],
                s.c.work_date < window[1],
            )
        ).all()
    return {row.assignar_id: row for row in rows}


def pay_timesheets(engine: Engine, connection_id: int) -> dict:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.timesheet).where(t.timesheet.c.source_connection_id == connection_id)
        ).all()
    return {row.source_external_id: row for row in rows}


def assert_pay_matches_assignar(
    pipeline: Pipeline, connection_id: int, window: tuple[date, date]
) -> None:
    """Staging equals the simulator for the window; Pay has each approved, unheld timesheet
    exactly once with Assignar's minutes, and everything else is void, held or absent."""
    truth = simulator_timesheets(pipeline.simulator, window)
    staged = staged_timesheets(pipeline.engine, connection_id, window)
    live = {i: row for i, row in staged.items() if row.voided_at is None}
    assert set(live) == set(truth), "staging differs from Assignar"
    for assignar_id, row in live.items():
        assert row.total_minutes == minutes(truth[assignar_id]["total_time"])
        assert row.status == truth[assignar_id]["status"]
    with pipeline.engine.connect() as conn:
        held = set(
            conn.execute(
                sa.select(t.sync_hold.c.assignar_id).where(
                    t.sync_hold.c.connection_id == connection_id,
                    t.sync_hold.c.entity == "timesheet",
                )
            ).scalars()
        )
    pay = pay_timesheets(pipeline.engine, connection_id)
    for assignar_id, record in truth.items():
        row = pay.get(assignar_id)
        if assignar_id in held:
            continue
        if record["status"] in APPROVED_STATUSES and row is not None:
            assert row.status != "void", f"approved timesheet {assignar_id} is void in Pay"
            assert row.payable_minutes == minutes(record["total_time"])
        elif row is not None:
            assert row.status == "void", f"unapproved timesheet {assignar_id} is live in Pay"
    for assignar_id, row in pay.items():
        if window[0] <= row.work_date < window[1] and assignar_id not in truth:
            assert row.status == "void", f"timesheet {assignar_id} deleted upstream is live"


def materialize_in_process(env: dict[str, str], pay_url: str, window: tuple[date, date]) -> bool:
    """One run in a process of its own, as a second run worker would make it (for spawn)."""
    import faulthandler
    import os

    faulthandler.dump_traceback_later(100)  # a hung run shows where it hangs in the test output
    os.environ.update(env)
    assets = list(defs.assets)
    with dg.instance_for_test() as instance:
        return dg.materialize(
            assets,
            instance=instance,
            tags={
                "dagster/asset_partition_range_start": window[0].isoformat(),
                "dagster/asset_partition_range_end": (window[1] - timedelta(days=1)).isoformat(),
            },
            resources={
                "assignar": AssignarResource(),
                "pay": PayDatabaseResource(url=pay_url),
                "scope": SyncScope(),
            },
            raise_on_error=False,
        ).success

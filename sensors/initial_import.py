"""New connection → its initial import: the last 4 weeks (28 date partitions), that connection
alone, timesheets and/or confirmed orders as its import options say.

`plan_initial_imports` decides, from the connections and the sensor's cursor (the highest
connection id already handled), which imports to launch; the sensor turns them into ranged runs.
On its very first evaluation (no cursor) it imports connections that have never imported any
dated window, e.g. the demo team connected by `make run` before Dagster started.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg
import sqlalchemy as sa

from assets.imports import SNAPSHOT_ASSETS, initial_import_job
from assignar_pipeline.entities import DATED, ENTITIES, asset_names
from assignar_pipeline.pay import tables as t
from assignar_pipeline.runs import (
    CONNECTIONS_TAG,
    INITIAL_IMPORT,
    OPERATION_TAG,
    connections_tag,
    scope_config,
)
from assignar_pipeline.sync_settings import SyncSettings, read_settings
from assignar_pipeline.windows import format_window
from resources.pay import PayDatabaseResource
from sensors.timing import interval

INITIAL_DAYS = 28


@dataclass(frozen=True)
class InitialImport:
    connection_id: int
    key: str
    entities: tuple[str, ...]
    first: date  # inclusive
    last: date  # inclusive: the connection's local today

    @property
    def assets(self) -> list[str]:
        return [*SNAPSHOT_ASSETS, *asset_names(self.entities)]


def plan_initial_imports(
    settings: Sequence[SyncSettings],
    cursor: int | None,
    now: datetime,
    never_imported: set[int],
) -> tuple[list[InitialImport], int | None]:
    """Imports to launch and the new cursor (the highest connection id seen)."""
    plans = []
    for s in sorted(settings, key=lambda s: s.connection_id):
        new = s.connection_id > cursor if cursor is not None else s.connection_id in never_imported
        entities = tuple(
            e.name for e in ENTITIES if e.dated and e.imported_by(s) and e.allowed_by_job_costing(s)
        )
        if new and s.status == "active" and entities:
            today = now.astimezone(ZoneInfo(s.timezone)).date()
            first = today - timedelta(days=INITIAL_DAYS - 1)
            plans.append(InitialImport(s.connection_id, s.key, entities, first, today))
    ids = [s.connection_id for s in settings]
    newest = max([*ids, cursor or 0]) if ids or cursor is not None else None
    return plans, newest


def run_request(plan: InitialImport) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=f"initial-import:{plan.connection_id}",
        asset_selection=[dg.AssetKey(a) for a in plan.assets],
        run_config=scope_config([plan.key]),
        tags={
            "dagster/asset_partition_range_start": plan.first.isoformat(),
            "dagster/asset_partition_range_end": plan.last.isoformat(),
            OPERATION_TAG: INITIAL_IMPORT,
            CONNECTIONS_TAG: connections_tag([plan.key]),
        },
    )


def _never_imported(conn: sa.Connection) -> set[int]:
    imported = sa.select(t.sync_state.c.connection_id).where(t.sync_state.c.entity.in_(DATED))
    return set(
        conn.execute(
            sa.select(t.connection.c.id).where(t.connection.c.id.not_in(imported))
        ).scalars()
    )


@dg.sensor(
    job=initial_import_job,
    minimum_interval_seconds=interval(30),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Launches a new connection's initial import: the last 28 days, that connection "
    "alone, per its import options.",
)
def initial_import_sensor(context: dg.SensorEvaluationContext, pay: PayDatabaseResource):
    cursor = json.loads(context.cursor)["seen"] if context.cursor else None
    with pay.engine.connect() as conn:
        settings = read_settings(conn)
        never = _never_imported(conn) if cursor is None else set()
    plans, newest = plan_initial_imports(settings, cursor, datetime.now(UTC), never)
    new_cursor = json.dumps({"seen": newest}) if newest is not None else context.cursor
    if not plans:
        return dg.SensorResult(skip_reason="No new connection.", cursor=new_cursor)
    for plan in plans:
        dates = format_window(plan.first, plan.last + timedelta(days=1))
        context.log.info(f"Initial import of {plan.key}: {', '.join(plan.entities)} {dates}")
    return dg.SensorResult(run_requests=[run_request(p) for p in plans], cursor=new_cursor)


IMPORT_SENSORS = [initial_import_sensor]

"""Each Assignar entity the pipeline imports, declared once: what to ask the API for, where it is
staged, the names it goes by, and the import options that turn it on.

Extract, change detection, status, bulk and initial imports, previews, the assets and the sensors
read these declarations instead of keeping lists of their own. An entity goes by several names,
each for a reason: `timesheets` (staging, cursors, the sync log of its fetches), `timesheet`
(links, holds and conflicts name one record), `assignar_timesheets` and `pay_timesheets` (its
assets; workers load into `pay_employees`), `pay_timesheets` in the sync log of its loads.
Asset keys are plain strings here: the core never imports Dagster.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from assignar_pipeline import client as api


@dataclass(frozen=True)
class Entity:
    """One Assignar entity and every name and option that belongs to it."""

    name: str  # "timesheets": staging, sync_state, sync_cursor, sync_log of fetches, validate()
    singular: str  # "timesheet": integration_link, sync_hold and conflict rows name one record
    resource: str  # the API path it is read from
    staging_table: str  # the table it is staged in (pay.tables)
    extract_asset: str  # the Dagster asset that stages it
    pay_asset: str  # the Dagster asset that loads it into Pay
    #: The API field a dated entity is windowed by (its local work date); None: a snapshot.
    window_field: str | None = None
    #: The fields `schemas.validate` reads, asked for with `fields=` where the volume is; None:
    #: whole records. A field left out reads as missing and quarantines the record.
    fields: tuple[str, ...] | None = None
    #: The connection's option that turns its import on (`import_timesheets`); None: always.
    import_option: str | None = None
    #: The sync setting that keeps it current (`auto_sync_timesheets`); None: not synced hourly.
    auto_sync_option: str | None = None
    #: Imported only for teams with job costing (orders).
    needs_job_costing: bool = False
    #: Days ahead of today it is booked for, which its lookback also covers (orders).
    days_booked_ahead: int = 0
    #: What a payroll clerk calls what it becomes in Pay (the sync log's summary).
    pay_label: str = ""

    @property
    def dated(self) -> bool:
        """Partitioned by work date (timesheets, orders), rather than a snapshot."""
        return self.window_field is not None

    @property
    def assets(self) -> tuple[str, str]:
        """Its extract asset, then its Pay asset (the order a run materializes them in)."""
        return self.extract_asset, self.pay_asset

    def imported_by(self, options: Any) -> bool:
        """Whether a connection's import options (a `ConnectionRow`, `SyncSettings`) take it."""
        return self.import_option is None or bool(getattr(options, self.import_option))

    def allowed_by_job_costing(self, options: Any) -> bool:
        """Whether the team's plan allows it (orders need job costing)."""
        return not self.needs_job_costing or bool(options.job_costing)

    def auto_synced_by(self, settings: Any) -> bool:
        """Whether the scheduled sync keeps it current: imported, auto-synced, allowed."""
        return (
            self.auto_sync_option is not None
            and self.imported_by(settings)
            and bool(getattr(settings, self.auto_sync_option))
            and self.allowed_by_job_costing(settings)
        )

    @property
    def load_log_entity(self) -> str:
        """The sync_log entity of its load into Pay (`pay_timesheets`, `pay_workers`)."""
        return f"pay_{self.name}"


PROJECTS = Entity(
    name="projects",
    singular="project",
    resource=api.PROJECTS,
    staging_table="staging_project",
    extract_asset="assignar_projects",
    pay_asset="pay_projects",
    pay_label="projects",
)
WORKERS = Entity(
    name="workers",
    singular="worker",
    resource=api.USERS,
    staging_table="staging_worker",
    extract_asset="assignar_workers",
    pay_asset="pay_employees",
    pay_label="employees",
)
# A whole /timesheets-expanded row is about 3.2 KB of JSON, these 15 fields about 1.8 KB, and
# parsing is most of a fetch's cost.
TIMESHEETS = Entity(
    name="timesheets",
    singular="timesheet",
    resource=api.TIMESHEETS,
    staging_table="staging_timesheet",
    extract_asset="assignar_timesheets",
    pay_asset="pay_timesheets",
    window_field="submitted_date",
    fields=(
        "id", "modified_time", "user_id", "project_id", "task_id", "order_id",
        "start_datetime", "end_datetime", "total_time", "status", "processed_at",
        "submitted_date", "start_time", "end_time", "activity_entries",
    ),
    import_option="import_timesheets",
    auto_sync_option="auto_sync_timesheets",
    pay_label="timesheets",
)  # fmt: skip
ORDERS = Entity(
    name="orders",
    singular="order",
    resource=api.ORDERS,
    staging_table="staging_order",
    extract_asset="assignar_orders",
    pay_asset="pay_orders",
    window_field="start_date",
    fields=(
        "id", "modified_time", "start_date", "end_date", "job_number", "po_number",
        "project_id", "client_id", "status_id", "job_description", "active", "activities",
    ),
    import_option="import_orders",
    auto_sync_option="auto_sync_orders",
    needs_job_costing=True,
    days_booked_ahead=28,
    pay_label="orders",
)  # fmt: skip

#: Every entity, in the order an import runs them: the snapshots matching needs, then the dated.
ENTITIES = (PROJECTS, WORKERS, TIMESHEETS, ORDERS)
BY_NAME = {e.name: e for e in ENTITIES}
#: Snapshot entities (no dates), and dated entities (date partitions), by name.
SNAPSHOTS = tuple(e.name for e in ENTITIES if not e.dated)
DATED = tuple(e.name for e in ENTITIES if e.dated)


def entity(name: str) -> Entity:
    """The declaration of `name` ("timesheets"), or of its singular ("timesheet")."""
    found = BY_NAME.get(name) or next((e for e in ENTITIES if e.singular == name), None)
    if found is None:
        raise KeyError(f"No Assignar entity {name!r}; known: {', '.join(BY_NAME)}")
    return found


def asset_names(entities: Iterable[str]) -> list[str]:
    """The extract and Pay asset of each entity, in that order."""
    return [asset for name in entities for asset in BY_NAME[name].assets]

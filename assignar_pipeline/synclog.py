"""What happened, per connection: runs, sync-log rows, and the status a team sees.

Every run writes sync-log rows per connection (extract, sync and load steps); `sync_run` adds the
run's kind (scheduled sync, initial import, bulk import, manual) and, once the run-status sensors
saw it end, its outcome. A run that failed before it could write a row still gets one per
connection from the failure sensor (`record_run_failure`), so the log explains every run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from assignar_pipeline.entities import ENTITIES
from assignar_pipeline.pay import tables as t
from assignar_pipeline.runs import BULK_IMPORT, INITIAL_IMPORT, OPERATION_TAG, SYNC
from assignar_pipeline.schedule import next_due
from assignar_pipeline.status import ConnectionStatus, connection_status
from assignar_pipeline.sync_settings import SyncSettings, read_settings

#: Run kinds, from the run's `assignar/operation` tag (backfill runs are bulk imports).
KINDS = (SYNC, INITIAL_IMPORT, BULK_IMPORT, "manual")
COUNTS = ("fetched", "inserted", "updated", "unchanged", "voided", "quarantined", "held")
#: sync_log entities as a payroll clerk calls them. Fetches from Assignar count records staged
#: (`pay_rates`: Assignar's own rates); `pay_*` loads count Pay rows, so one timesheet fetched
#: and loaded is counted on each side and the two sides are never summed.
FROM_ASSIGNAR = {**{e.name: e.name for e in ENTITIES}, "pay_rates": "pay rates"}
INTO_PAY = {e.load_log_entity: e.pay_label for e in ENTITIES}


def note_run(engine: Engine, run_id: str, kind: str, now: datetime | None = None) -> None:
    """Remember a run's kind when it starts (idempotent: a retried step does not duplicate it)."""
    with engine.begin() as conn:
        exists = conn.execute(
            sa.select(t.sync_run.c.run_id).where(t.sync_run.c.run_id == run_id)
        ).first()
        if exists is None:
            conn.execute(
                t.sync_run.insert().values(
                    run_id=run_id, kind=kind, started_at=now or datetime.now(UTC)
                )
            )


def finish_run(
    engine: Engine,
    run_id: str,
    status: str,
    *,
    kind: str = "manual",
    error: str | None = None,
    now: datetime | None = None,
) -> None:
    """Record how a run ended (run-status sensors); a run never noted is noted now."""
    now = now or datetime.now(UTC)
    note_run(engine, run_id, kind, now)
    with engine.begin() as conn:
        conn.execute(
            t.sync_run.update()
            .where(t.sync_run.c.run_id == run_id)
            .values(status=status, finished_at=now, error=error)
        )


def record_run_failure(
    engine: Engine, run_id: str, connection_ids: Sequence[int], error: str, now: datetime
) -> list[int]:
    """A `run` row for each connection of a failed run that logged no error of its own.

    Returns the connections that got one.
    """
    with engine.begin() as conn:
        explained = set(
            conn.execute(
                sa.select(t.sync_log.c.connection_id).where(
                    t.sync_log.c.run_id == run_id, t.sync_log.c.error.is_not(None)
                )
            ).scalars()
        )
        missing = [c for c in dict.fromkeys(connection_ids) if c not in explained]
        for connection_id in missing:
            conn.execute(
                t.sync_log.insert().values(
                    connection_id=connection_id,
                    run_id=run_id,
                    entity="run",
                    started_at=now,
                    finished_at=now,
                    error=error,
                )
            )
    return missing


# -- reading the log -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LogRow:
    started_at: datetime
    run_id: str
    kind: str
    connection: str
    entity: str
    window: tuple[date, date] | None
    counts: dict[str, int]
    api_requests: int
    error: str | None


def sync_log_rows(
    conn: Connection,
    *,
    keys: Sequence[str] | None = None,
    run_id: str | None = None,
    limit: int = 50,
) -> list[LogRow]:
    """The newest sync-log rows (newest first), optionally of some connections or one run."""
    log, run, c = t.sync_log, t.sync_run, t.connection
    query = (
        sa.select(log, c.c.key, run.c.kind)
        .join(c, c.c.id == log.c.connection_id)
        .outerjoin(run, run.c.run_id == log.c.run_id)
        .order_by(log.c.started_at.desc(), log.c.id.desc())
        .limit(limit)
    )
    if keys:
        query = query.where(c.c.key.in_(list(keys)))
    if run_id:
        query = query.where(log.c.run_id.startswith(run_id))
    return [
        LogRow(
            started_at=r.started_at,
            run_id=r.run_id,
            kind=r.kind or "manual",
            connection=r.key,
            entity=r.entity,
            window=(r.window_start, r.window_end) if r.window_start else None,
            counts={name: getattr(r, name) for name in COUNTS},
            api_requests=r.api_requests,
            error=r.error,
        )
        for r in conn.execute(query)
    ]


@dataclass
class SyncStatus:
    """One connection as its team sees it: reconciliation's `connection_status` (the state and
    its open conflicts), extended with the sync side: next due sync, the last run's kind and
    counts, records in quarantine."""

    base: ConnectionStatus
    settings: SyncSettings
    next_due_at: datetime | None = None
    last_run_id: str | None = None
    last_run_kind: str | None = None
    entities: dict[str, dict[str, int]] = field(default_factory=dict)  # the last run's counts
    open_quarantine: int = 0

    @property
    def key(self) -> str:
        return self.base.key

    @property
    def status(self) -> str:
        return self.base.state

    @property
    def last_sync_at(self) -> datetime | None:
        return self.base.last_sync_at

    @property
    def last_error(self) -> str | None:
        return self.base.last_error

    @property
    def open_conflicts(self) -> int:
        return sum(self.base.open_conflicts.values())

    def _total(self, side: dict[str, str], count: str) -> int:
        return sum(c[count] for entity, c in self.entities.items() if entity in side)

    def last_run(self) -> list[str]:
        """The last run's counts in two lines: what came from Assignar, what changed in Pay."""
        if not self.entities:
            return []

        def per_entity(side: dict[str, str], count: str) -> str:
            parts = [
                f"{self.entities[e][count]} {n}" for e, n in side.items() if e in self.entities
            ]
            return f" ({', '.join(parts)})" if parts else ""

        fetched = f"from Assignar: {self._total(FROM_ASSIGNAR, 'fetched')} records"
        fetched += per_entity(FROM_ASSIGNAR, "fetched")
        for count, words in (("voided", "deleted in Assignar"), ("quarantined", "quarantined")):
            if self._total(FROM_ASSIGNAR, count):
                fetched += f", {self._total(FROM_ASSIGNAR, count)} {words}"
        loaded = f"into Pay: {self._total(INTO_PAY, 'inserted')} added or linked"
        loaded += per_entity(INTO_PAY, "inserted")
        for count, words in (("updated", "updated"), ("voided", "voided"),
                             ("held", "held by open conflicts")):  # fmt: skip
            if self._total(INTO_PAY, count):
                loaded += f", {self._total(INTO_PAY, count)} {words}"
        return [fetched, loaded]

    def as_metadata(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "last_sync": _iso(self.last_sync_at),
            "last_run": self.last_run_kind or "",
            "next_due_sync": _iso(self.next_due_at),
            "fetched_from_assignar": self._total(FROM_ASSIGNAR, "fetched"),
            "quarantined": self._total(FROM_ASSIGNAR, "quarantined"),
            "added_to_pay": self._total(INTO_PAY, "inserted"),
            "updated_in_pay": self._total(INTO_PAY, "updated"),
            "voided_in_pay": self._total(INTO_PAY, "voided"),
            "held": self._total(INTO_PAY, "held"),
            "open_conflicts": self.open_conflicts,
            "in_quarantine": self.open_quarantine,
            "last_error": self.last_error or "",
        }


def sync_status(conn: Connection, connection_id: int, now: datetime) -> SyncStatus:
    """Last sync, next due sync, counts, open conflicts and the last error of one connection."""
    base = connection_status(conn, connection_id)
    (settings,) = read_settings(conn, ids=[connection_id])
    status = SyncStatus(base, settings)
    if settings.scheduled:
        status.next_due_at = next_due(settings.cadence, now)
    log = t.sync_log
    last = conn.execute(
        sa.select(log.c.run_id)
        .where(log.c.connection_id == connection_id)
        .order_by(log.c.started_at.desc(), log.c.id.desc())
        .limit(1)
    ).scalar()
    if last is not None:
        rows = conn.execute(
            sa.select(log)
            .where(log.c.connection_id == connection_id, log.c.run_id == last)
            .order_by(log.c.id)
        ).all()
        status.last_run_id = last
        for r in rows:
            counts = status.entities.setdefault(r.entity, dict.fromkeys(COUNTS, 0))
            for name in COUNTS:
                counts[name] += getattr(r, name)
        status.last_run_kind = (
            conn.execute(sa.select(t.sync_run.c.kind).where(t.sync_run.c.run_id == last)).scalar()
            or "manual"
        )
    status.open_quarantine = conn.execute(
        sa.select(sa.func.count())
        .select_from(t.quarantine)
        .where(t.quarantine.c.connection_id == connection_id, t.quarantine.c.released_at.is_(None))
    ).scalar_one()
    return status


def _iso(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else ""


def run_kind(tags: dict[str, str] | Any) -> str:
    """A run's kind from its tags: `assignar/operation`, else a backfill's, else manual."""
    operation = tags.get(OPERATION_TAG)
    if operation in KINDS:
        return operation
    return BULK_IMPORT if tags.get("dagster/backfill") else "manual"

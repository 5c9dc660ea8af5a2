"""What happened, as people read it: a connection's status, its last run, the sync log's rows.

A connection's status as a person sees it: Connected, Sync Warning, Error (or Disconnected).

`connection_status` is the one place that decides it, for `assignar-pipeline status`, the asset
metadata and the Sync Warning check. Error: the connection's latest sync failed (bad credentials,
maintenance, ...). Sync Warning: it synced, but conflicts wait for a person. Extend the dataclass
(last/next sync, ...) rather than computing a status elsewhere.
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
from assignar_pipeline.pay.tables import connection as connection_table
from assignar_pipeline.pay.tables import sync_hold, sync_log
from assignar_pipeline.reconcile.conflicts import KIND_LABELS
from assignar_pipeline.reconcile.queries import open_conflict_counts
from assignar_pipeline.schedule import next_due
from assignar_pipeline.sync_settings import SyncSettings, read_settings
from assignar_pipeline.synclog import COUNTS

CONNECTED = "Connected"
SYNC_WARNING = "Sync Warning"
ERROR = "Error"
DISCONNECTED = "Disconnected"
#: sync_log entities written by a fetch from Assignar (a resolution's re-load is not a sync);
#: `run`: a sync or import that failed before it could fetch (a missing secret variable, a run
#: that died), as the sync job and the failure sensor record it.
SYNC_ENTITIES = (*(e.name for e in ENTITIES), "pay_rates", "run")
#: sync_log entities as a payroll clerk calls them. Fetches from Assignar count records staged
#: (`pay_rates`: Assignar's own rates); `pay_*` loads count Pay rows, so one timesheet fetched
#: and loaded is counted on each side and the two sides are never summed.
FROM_ASSIGNAR = {**{e.name: e.name for e in ENTITIES}, "pay_rates": "pay rates"}
INTO_PAY = {e.load_log_entity: e.pay_label for e in ENTITIES}


@dataclass
class ConnectionStatus:
    connection_id: int
    key: str
    team_id: int
    state: str  # Connected | Sync Warning | Error | Disconnected
    open_conflicts: dict[str, int] = field(default_factory=dict)  # kind → count
    held: dict[str, int] = field(default_factory=dict)  # entity → records waiting
    last_sync_at: datetime | None = None
    last_error: str | None = None

    @property
    def conflicts_command(self) -> str:
        return f"assignar-pipeline conflicts list --connection {self.key}"

    def describe(self) -> str:
        """One line: the state and why."""
        if self.state == ERROR:
            return f"{self.state}: {self.last_error}"
        if self.open_conflicts:
            kinds = ", ".join(
                f"{n} {KIND_LABELS[k]}" for k, n in sorted(self.open_conflicts.items())
            )
            return f"{self.state}: {kinds} open (see `{self.conflicts_command}`)"
        return self.state

    def as_metadata(self) -> dict:
        return {
            "status": self.state,
            "open_conflicts": dict(self.open_conflicts),
            "held": dict(self.held),
            "command": self.conflicts_command,
            **({"error": self.last_error} if self.last_error else {}),
        }


def connection_status(conn: Connection, connection_id: int) -> ConnectionStatus:
    row = conn.execute(
        sa.select(connection_table).where(connection_table.c.id == connection_id)
    ).one()
    status = ConnectionStatus(connection_id, row.key, row.team_id, CONNECTED)
    status.open_conflicts = open_conflict_counts(conn, [connection_id]).get(connection_id, {})
    status.held = dict(
        conn.execute(
            sa.select(sync_hold.c.entity, sa.func.count())
            .where(sync_hold.c.connection_id == connection_id)
            .group_by(sync_hold.c.entity)
        ).all()
    )
    latest = conn.execute(
        sa.select(sync_log.c.run_id, sync_log.c.started_at)
        .where(sync_log.c.connection_id == connection_id, sync_log.c.entity.in_(SYNC_ENTITIES))
        .order_by(sync_log.c.started_at.desc(), sync_log.c.id.desc())
        .limit(1)
    ).first()
    if latest is not None:
        status.last_sync_at = latest.started_at
        status.last_error = conn.execute(
            sa.select(sync_log.c.error)
            .where(
                sync_log.c.connection_id == connection_id,
                sync_log.c.run_id == latest.run_id,
                sync_log.c.error.is_not(None),
            )
            .order_by(sync_log.c.id)
            .limit(1)
        ).scalar()
    if row.status != "active":
        status.state = DISCONNECTED
    elif status.last_error:
        status.state = ERROR
    elif status.open_conflicts:
        status.state = SYNC_WARNING
    return status


# -- a run, and the sync log --------------------------------------------------------------------


def failed_in_run(engine: Engine, run_id: str) -> dict[str, str]:
    """Connection key → first error logged by this run (for naming them when the run fails)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(connection_table.c.key, sync_log.c.error)
            .join(connection_table, connection_table.c.id == sync_log.c.connection_id)
            .where(sync_log.c.run_id == run_id, sync_log.c.error.is_not(None))
            .order_by(sync_log.c.id)
        ).all()
    failed: dict[str, str] = {}
    for key, error in rows:
        failed.setdefault(key, error)
    return failed


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

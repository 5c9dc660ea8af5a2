"""A connection's status as a person sees it: Connected, Sync Warning, Error (or Disconnected).

`connection_status` is the one place that decides it, for `assignar-pipeline status`, the asset
metadata and the Sync Warning check. Error: the connection's latest sync failed (bad credentials,
maintenance, ...). Sync Warning: it synced, but conflicts wait for a person. Extend the dataclass
(last/next sync, ...) rather than computing a status elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from assignar_pipeline.entities import ENTITIES
from assignar_pipeline.pay.tables import connection as connection_table
from assignar_pipeline.pay.tables import sync_hold, sync_log
from assignar_pipeline.reconcile.conflicts import KIND_LABELS
from assignar_pipeline.reconcile.queries import open_conflict_counts

CONNECTED = "Connected"
SYNC_WARNING = "Sync Warning"
ERROR = "Error"
DISCONNECTED = "Disconnected"
#: sync_log entities written by a fetch from Assignar (a resolution's re-load is not a sync);
#: `run`: a sync or import that failed before it could fetch (a missing secret variable, a run
#: that died), as the sync job and the failure sensor record it.
SYNC_ENTITIES = (*(e.name for e in ENTITIES), "pay_rates", "run")


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

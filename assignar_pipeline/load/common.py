"""What every entity's loader shares: the counts of a load, the staged rows of a window, the
Pay rows already loaded from them, and the end of a load (holds replaced, conflicts noted)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from assignar_pipeline.pay.tables import STAGING, team_feature
from assignar_pipeline.reconcile.conflicts import ConflictBook, Hold, replace_holds

OUTCOMES = ("inserted", "updated", "unchanged", "adjusted", "voided", "held", "ignored", "linked")


@dataclass
class LoadCounts:
    """What one load did; `minutes` tracks the same outcomes in minutes (conservation: every
    staged record of the window ends in exactly one outcome)."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    adjusted: int = 0  # locked in Pay, changed upstream, the change accepted as an adjustment
    voided: int = 0
    held: int = 0
    ignored: int = 0
    linked: int = 0
    minutes: dict[str, int] = field(default_factory=dict)
    hold_reasons: list[str] = field(default_factory=list)
    conflicts: dict[str, int] = field(default_factory=dict)  # open conflicts met, by kind
    #: Assignar id → outcome, for the one window piece a loader call covers (not merged: a
    #: long range would keep every id); what the conservation property checks record by record.
    records: dict[int, str] = field(default_factory=dict)

    def count(self, outcome: str, minutes: int = 0, record: int | None = None) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)
        self.minutes[outcome] = self.minutes.get(outcome, 0) + minutes
        if record is not None:
            self.records[record] = outcome

    def add(self, outcome: str, records: int, minutes: int) -> None:
        """Many records of one outcome at once (the set-based load counts in SQL)."""
        setattr(self, outcome, getattr(self, outcome) + records)
        self.minutes[outcome] = self.minutes.get(outcome, 0) + minutes

    def merge(self, part: LoadCounts) -> None:
        for name in OUTCOMES:
            setattr(self, name, getattr(self, name) + getattr(part, name))
        for outcome, minutes in part.minutes.items():
            self.minutes[outcome] = self.minutes.get(outcome, 0) + minutes
        self.hold_reasons = (self.hold_reasons + part.hold_reasons)[:5]
        for kind, n in part.conflicts.items():
            self.conflicts[kind] = max(self.conflicts.get(kind, 0), n)

    def as_metadata(self) -> dict[str, Any]:
        return {
            **{name: getattr(self, name) for name in OUTCOMES},
            "conflicts": sum(self.conflicts.values()),
        }

    def _note_conflicts(self, book: ConflictBook, ids: Iterable[str]) -> None:
        for cid in set(ids):
            row = book.rows.get(cid)
            if row is not None and row.status == "open":
                self.conflicts[row.kind] = self.conflicts.get(row.kind, 0) + 1


def read_staged(conn: Connection, entity: str, connection_id: int, window=None) -> list[Any]:
    table = STAGING[entity]
    query = sa.select(table).where(table.c.connection_id == connection_id)
    if window is not None:
        query = query.where(table.c.work_date >= window[0], table.c.work_date < window[1])
    return conn.execute(query.order_by(table.c.assignar_id)).all()


def finish_load(
    conn: Connection,
    connection: Any,
    entity: str,
    book: ConflictBook,
    holds: dict[int, Hold],
    counts: LoadCounts,
    now: datetime,
    window: tuple[date, date] | None = None,
) -> None:
    replace_holds(conn, connection.id, entity, holds, now, window=window)
    counts.hold_reasons = [h.reason for h in holds.values()][:5]
    counts._note_conflicts(book, (c for h in holds.values() for c in h.conflicts))
    book.finish()


def source_hash_of(staged: Any, worker: Any, project_link: Any) -> str:
    """What the Pay row was built from: the staged content and the links it resolved through."""
    pay_ids = (worker.pay_id if worker else None, project_link.pay_id if project_link else None)
    return hashlib.sha256(f"{staged.content_hash}:{pay_ids}".encode()).hexdigest()


def existing_by_source(
    conn: Connection, table: sa.Table, connection_id: int, ids: list[int]
) -> dict:
    found: dict[int, Any] = {}
    for start in range(0, len(ids), 5_000):
        for row in conn.execute(
            sa.select(table).where(
                table.c.source_connection_id == connection_id,
                table.c.source_external_id.in_(ids[start : start + 5_000]),
            )
        ):
            found[row.source_external_id] = row
    return found


def has_feature(conn: Connection, team_id: int, feature: str) -> bool:
    return bool(
        conn.execute(
            sa.select(team_feature.c.enabled).where(
                team_feature.c.team_id == team_id, team_feature.c.feature == feature
            )
        ).scalar()
    )

"""Queries behind the asset checks: open quarantine, duplicate Pay timesheets, minutes parity,
and each connection's Sync Warning (open reconciliation conflicts)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from assignar_pipeline.alerts import FIRST_REASONS, Finding
from assignar_pipeline.load import APPROVED_STATUSES
from assignar_pipeline.pay.tables import (
    integration_link,
    quarantine,
    staging_timesheet,
    sync_hold,
    timesheet,
    timesheet_adjustment,
)
from assignar_pipeline.reconcile.conflicts import KIND_LABELS
from assignar_pipeline.status import ConnectionStatus, connection_status


@dataclass(frozen=True)
class QuarantineSummary:
    connection_id: int
    count: int
    reasons: tuple[str, ...]


def open_quarantine(
    conn: Connection,
    entity: str,
    connection_ids: Sequence[int],
    window: tuple[date, date] | None = None,
) -> list[QuarantineSummary]:
    """Records still quarantined, per connection, with the first few reasons."""
    where = [
        quarantine.c.entity == entity,
        quarantine.c.connection_id.in_(connection_ids),
        quarantine.c.released_at.is_(None),
    ]
    if window is not None:
        where += [quarantine.c.work_date >= window[0], quarantine.c.work_date < window[1]]
    rows = conn.execute(
        sa.select(quarantine.c.connection_id, quarantine.c.reason)
        .where(*where)
        .order_by(quarantine.c.connection_id, quarantine.c.id)
    ).all()
    summaries: dict[int, list[str]] = {}
    for row in rows:
        summaries.setdefault(row.connection_id, []).append(row.reason)
    return [
        QuarantineSummary(cid, len(reasons), tuple(dict.fromkeys(reasons))[:3])
        for cid, reasons in summaries.items()
    ]


def duplicate_timesheets(conn: Connection, connection_ids: Sequence[int]) -> list[tuple[int, int]]:
    """(connection, Assignar id) pairs that more than one Pay timesheet claims."""
    rows = conn.execute(
        sa.select(timesheet.c.source_connection_id, timesheet.c.source_external_id)
        .where(timesheet.c.source_connection_id.in_(connection_ids))
        .group_by(timesheet.c.source_connection_id, timesheet.c.source_external_id)
        .having(sa.func.count() > 1)
    ).all()
    return [tuple(row) for row in rows]


@dataclass(frozen=True)
class MinutesMismatch:
    connection_id: int
    employee_id: int
    work_date: date
    assignar_minutes: int
    pay_minutes: int


def minutes_parity(
    conn: Connection, connection_ids: Sequence[int], window: tuple[date, date]
) -> list[MinutesMismatch]:
    """Per Pay employee and day: approved, linked, not-held Assignar minutes equal Pay's.

    Pay's minutes include approved adjustments of timesheets it had locked; a timesheet whose
    upstream change was rejected (Pay deliberately keeps its own minutes) is left out on both
    sides.
    """
    rejected = (
        sa.select(timesheet_adjustment.c.timesheet_id)
        .where(timesheet_adjustment.c.status == "rejected")
        .scalar_subquery()
    )
    rejected_source = sa.exists().where(
        timesheet.c.source_connection_id == staging_timesheet.c.connection_id,
        timesheet.c.source_external_id == staging_timesheet.c.assignar_id,
        timesheet.c.id.in_(rejected),
    )
    adjusted = (
        sa.select(sa.func.coalesce(sa.func.sum(timesheet_adjustment.c.delta_minutes), 0))
        .where(
            timesheet_adjustment.c.timesheet_id == timesheet.c.id,
            timesheet_adjustment.c.status == "approved",
        )
        .scalar_subquery()
    )
    # NOT EXISTS on the hold's primary key: a correlated NOT IN scanned the holds per row.
    held = sa.exists().where(
        sync_hold.c.connection_id == staging_timesheet.c.connection_id,
        sync_hold.c.entity == "timesheet",
        sync_hold.c.assignar_id == staging_timesheet.c.assignar_id,
    )
    assignar = (
        sa.select(
            staging_timesheet.c.connection_id,
            integration_link.c.pay_id.label("employee_id"),
            staging_timesheet.c.work_date,
            sa.func.sum(staging_timesheet.c.total_minutes).label("minutes"),
        )
        .join(
            integration_link,
            sa.and_(
                integration_link.c.connection_id == staging_timesheet.c.connection_id,
                integration_link.c.entity == "worker",
                integration_link.c.external_id == staging_timesheet.c.user_assignar_id,
                integration_link.c.pay_id.is_not(None),
            ),
        )
        .where(
            staging_timesheet.c.connection_id.in_(connection_ids),
            staging_timesheet.c.work_date >= window[0],
            staging_timesheet.c.work_date < window[1],
            staging_timesheet.c.voided_at.is_(None),
            staging_timesheet.c.status.in_(APPROVED_STATUSES),
            ~held,
            ~rejected_source,
        )
        .group_by(
            staging_timesheet.c.connection_id,
            integration_link.c.pay_id,
            staging_timesheet.c.work_date,
        )
    )
    held_pay = sa.exists().where(
        sync_hold.c.connection_id == timesheet.c.source_connection_id,
        sync_hold.c.entity == "timesheet",
        sync_hold.c.assignar_id == timesheet.c.source_external_id,
    )
    pay = (
        sa.select(
            timesheet.c.source_connection_id.label("connection_id"),
            timesheet.c.employee_id,
            timesheet.c.work_date,
            sa.func.sum(timesheet.c.payable_minutes + adjusted).label("minutes"),
        )
        .where(
            timesheet.c.source_connection_id.in_(connection_ids),
            timesheet.c.work_date >= window[0],
            timesheet.c.work_date < window[1],
            timesheet.c.status != "void",
            ~held_pay,
            timesheet.c.id.not_in(rejected),
        )
        .group_by(timesheet.c.source_connection_id, timesheet.c.employee_id, timesheet.c.work_date)
    )
    left = {
        (r.connection_id, r.employee_id, r.work_date): r.minutes for r in conn.execute(assignar)
    }
    right = {_day_key(r): r.minutes for r in conn.execute(pay)}
    return [
        MinutesMismatch(*key, left.get(key, 0), right.get(key, 0))
        for key in sorted(left.keys() | right.keys())
        if left.get(key, 0) != right.get(key, 0)
    ]


def _day_key(row: sa.Row) -> tuple[int, int, date]:
    return row.connection_id, row.employee_id, row.work_date


def sync_warnings(conn: Connection, connections: Sequence) -> dict[str, ConnectionStatus]:
    """Connection key → its status (Connected / Sync Warning / Error) with open conflicts."""
    return {c.key: connection_status(conn, c.id) for c in connections}


# -- findings per connection, for alerts (`assignar_pipeline.alerts`) ----------------------------


def quarantine_findings(
    connections: Sequence, quarantined: Sequence[QuarantineSummary]
) -> list[Finding]:
    by_id = {q.connection_id: q for q in quarantined}
    found = []
    for c in connections:
        q = by_id.get(c.id)
        reasons = tuple(f"quarantined: {r}" for r in q.reasons) if q else ()
        found.append(Finding(c.key, q is not None, q.count if q else 0, reasons))
    return found


def conflict_findings(statuses: dict[str, ConnectionStatus], kinds: Sequence[str]) -> list[Finding]:
    found = []
    for key, status in statuses.items():
        counts = {k: status.open_conflicts.get(k, 0) for k in kinds}
        reasons = tuple(f"{n} {KIND_LABELS[k]} conflict(s) open" for k, n in counts.items() if n)
        if reasons:
            reasons += (f"list them: {status.conflicts_command}",)
        found.append(Finding(key, bool(reasons), sum(counts.values()), reasons))
    return found


def duplicate_findings(
    connections: Sequence, duplicates: Sequence[tuple[int, int]]
) -> list[Finding]:
    found = []
    for c in connections:
        ids = [external for cid, external in duplicates if cid == c.id]
        reasons = tuple(f"Assignar timesheet {i} is in Pay more than once" for i in ids)
        found.append(Finding(c.key, bool(ids), len(ids), reasons[:FIRST_REASONS]))
    return found


def parity_findings(connections: Sequence, mismatches: Sequence[MinutesMismatch]) -> list[Finding]:
    found = []
    for c in connections:
        mine = [m for m in mismatches if m.connection_id == c.id]
        reasons = tuple(
            f"Pay employee {m.employee_id} on {m.work_date}: Assignar {m.assignar_minutes} min, "
            f"Pay {m.pay_minutes} min"
            for m in mine[:FIRST_REASONS]
        )
        found.append(Finding(c.key, bool(mine), len(mine), reasons))
    return found

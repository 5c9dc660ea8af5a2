"""Queries behind the asset checks: open quarantine, duplicate Pay timesheets, minutes parity,
and each connection's Sync Warning (open reconciliation conflicts).

A failing check names what a person has to look at: the connection, the employee and the day
(`describe`), and its metadata holds the same as JSON (ISO dates: Dagster metadata is JSON).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from assignar_pipeline.alerts import FIRST_REASONS, Finding
from assignar_pipeline.pay.tables import connection as connection_table
from assignar_pipeline.pay.tables import (
    employee,
    integration_link,
    quarantine,
    staging_timesheet,
    staging_worker,
    sync_hold,
    timesheet,
    timesheet_adjustment,
)
from assignar_pipeline.reconcile.conflicts import KIND_LABELS
from assignar_pipeline.reconcile.policy import APPROVED_STATUSES
from assignar_pipeline.reconcile.queries import list_conflicts
from assignar_pipeline.status import ConnectionStatus, connection_status
from assignar_pipeline.windows import format_window

#: How many records a failing check's description names; its metadata lists more.
NAMED = 5


def describe(headline: str, lines: Sequence[str], total: int, rest: str = "the metadata") -> str:
    """A failing check's description: what is wrong, then the first records by name."""
    more = [f"... and {total - NAMED} more (see {rest})"] if total > NAMED else []
    return "\n".join([headline, *(f"- {line}" for line in lines[:NAMED]), *more])


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


@dataclass(frozen=True)
class QuarantinedRecord:
    assignar_id: str | None
    work_date: date | None
    who: str | None  # the worker, when the raw record names one
    reason: str

    def describe(self, entity: str) -> str:
        day = f" on {self.work_date}" if self.work_date else ""
        who = f" of {self.who}" if self.who else ""
        return f"{entity} {self.assignar_id or '(no id)'}{who}{day}: {self.reason}"


@dataclass(frozen=True)
class QuarantineSummary:
    connection_id: int
    connection: str
    count: int
    reasons: tuple[str, ...]
    first: tuple[QuarantinedRecord, ...] = ()

    def describe(self, entity: str) -> list[str]:
        return [f"{self.connection}: {r.describe(entity[:-1])}" for r in self.first]


def open_quarantine(
    conn: Connection,
    entity: str,
    connection_ids: Sequence[int],
    window: tuple[date, date] | None = None,
) -> list[QuarantineSummary]:
    """Records still quarantined, per connection, with the first few reasons and records."""
    where = [
        quarantine.c.entity == entity,
        quarantine.c.connection_id.in_(connection_ids),
        quarantine.c.released_at.is_(None),
    ]
    if window is not None:
        where += [quarantine.c.work_date >= window[0], quarantine.c.work_date < window[1]]
    rows = conn.execute(
        sa.select(
            quarantine.c.connection_id,
            quarantine.c.assignar_id,
            quarantine.c.work_date,
            quarantine.c.record,
            quarantine.c.reason,
        )
        .where(*where)
        .order_by(quarantine.c.connection_id, quarantine.c.id)
    ).all()
    keys = _connection_keys(conn, {row.connection_id for row in rows})
    found: dict[int, list[Any]] = {}
    for row in rows:
        found.setdefault(row.connection_id, []).append(row)
    return [
        QuarantineSummary(
            cid,
            keys[cid],
            len(records),
            tuple(dict.fromkeys(r.reason for r in records))[:3],
            tuple(
                QuarantinedRecord(
                    r.assignar_id, r.work_date, _worker_named_in(conn, cid, r.record), r.reason
                )
                for r in records[:NAMED]
            ),
        )
        for cid, records in found.items()
    ]


def quarantine_description(entity: str, summaries: Sequence[QuarantineSummary]) -> str | None:
    """What is in quarantine and why, or None when nothing is."""
    if not summaries:
        return None
    total = sum(q.count for q in summaries)
    per = ", ".join(f"{q.connection} {q.count}" for q in summaries)
    return describe(
        f"{_plural(total, entity[:-1])} in quarantine ({per}): fix them in Assignar; the next "
        "run of their dates loads them and empties the quarantine:",
        [line for q in summaries for line in q.describe(entity)],
        total,
    )


def _worker_named_in(conn: Connection, connection_id: int, record: Any) -> str | None:
    """The worker a raw (possibly malformed) record names: a worker record's own name, or the
    staged worker whose Assignar id a timesheet's `user_id` gives."""
    if not isinstance(record, dict):
        return None
    if record.get("first_name") or record.get("last_name"):
        return " ".join(str(record[k]) for k in ("first_name", "last_name") if record.get(k))
    user_id = record.get("user_id")
    if not isinstance(user_id, int) or isinstance(user_id, bool):
        return None
    worker = conn.execute(
        sa.select(staging_worker.c.first_name, staging_worker.c.last_name).where(
            staging_worker.c.connection_id == connection_id,
            staging_worker.c.assignar_id == user_id,
        )
    ).first()
    return f"{worker.first_name} {worker.last_name}" if worker else f"Assignar worker {user_id}"


@dataclass(frozen=True)
class DuplicateTimesheet:
    """One Assignar timesheet that several Pay timesheets claim."""

    connection: str
    assignar_id: int
    pay_ids: tuple[int, ...]
    employee: str
    work_date: date

    def describe(self) -> str:
        ids = ", ".join(map(str, self.pay_ids))
        return (
            f"{self.connection}: {self.employee} on {self.work_date}: Assignar timesheet "
            f"{self.assignar_id} is Pay timesheets {ids}"
        )

    def as_metadata(self) -> dict[str, Any]:
        return {
            "connection": self.connection,
            "assignar_id": self.assignar_id,
            "pay_ids": list(self.pay_ids),
            "employee": self.employee,
            "work_date": self.work_date.isoformat(),
        }


def duplicate_timesheets(
    conn: Connection, connection_ids: Sequence[int]
) -> list[DuplicateTimesheet]:
    """Assignar timesheets that more than one Pay timesheet claims, with whose and which day."""
    pairs = (
        sa.select(timesheet.c.source_connection_id, timesheet.c.source_external_id)
        .where(timesheet.c.source_connection_id.in_(connection_ids))
        .group_by(timesheet.c.source_connection_id, timesheet.c.source_external_id)
        .having(sa.func.count() > 1)
        .subquery()
    )
    rows = conn.execute(
        sa.select(
            timesheet.c.id,
            timesheet.c.source_connection_id,
            timesheet.c.source_external_id,
            timesheet.c.employee_id,
            timesheet.c.work_date,
        )
        .join(
            pairs,
            sa.and_(
                pairs.c.source_connection_id == timesheet.c.source_connection_id,
                pairs.c.source_external_id == timesheet.c.source_external_id,
            ),
        )
        .order_by(timesheet.c.source_connection_id, timesheet.c.source_external_id, timesheet.c.id)
    ).all()
    keys = _connection_keys(conn, {r.source_connection_id for r in rows})
    names = _employee_names(conn, {r.employee_id for r in rows})
    claimed: dict[tuple[int, int], list[Any]] = {}
    for row in rows:
        claimed.setdefault((row.source_connection_id, row.source_external_id), []).append(row)
    return [
        DuplicateTimesheet(
            keys[cid],
            assignar_id,
            tuple(r.id for r in claims),
            names[claims[0].employee_id],
            claims[0].work_date,
        )
        for (cid, assignar_id), claims in claimed.items()
    ]


def duplicates_description(duplicates: Sequence[DuplicateTimesheet]) -> str | None:
    """Which Assignar timesheets Pay holds more than once, or None when none."""
    if not duplicates:
        return None
    return describe(
        f"{_plural(len(duplicates), 'Assignar timesheet')} would be paid twice: void all but "
        "one of its Pay timesheets:",
        [d.describe() for d in duplicates],
        len(duplicates),
    )


@dataclass(frozen=True)
class MinutesMismatch:
    connection_id: int
    employee_id: int
    work_date: date
    assignar_minutes: int
    pay_minutes: int
    connection: str = ""
    employee: str = ""  # "First Last (employee number)"

    def describe(self) -> str:
        return (
            f"{self.connection}: {self.employee} on {self.work_date}: Pay {self.pay_minutes} "
            f"min, Assignar {self.assignar_minutes} min"
        )

    def as_metadata(self) -> dict[str, Any]:
        return {
            "connection": self.connection,
            "employee": self.employee,
            "employee_id": self.employee_id,
            "work_date": self.work_date.isoformat(),
            "assignar_minutes": self.assignar_minutes,
            "pay_minutes": self.pay_minutes,
        }


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
    # int(): PostgreSQL sums integers as numeric (Decimal), which JSON metadata cannot hold.
    left = {
        (r.connection_id, r.employee_id, r.work_date): int(r.minutes)
        for r in conn.execute(assignar)
    }
    right = {_day_key(r): int(r.minutes) for r in conn.execute(pay)}
    differing = [
        key for key in sorted(left.keys() | right.keys()) if left.get(key, 0) != right.get(key, 0)
    ]
    keys = _connection_keys(conn, {key[0] for key in differing})
    names = _employee_names(conn, {key[1] for key in differing})
    return [
        MinutesMismatch(*key, left.get(key, 0), right.get(key, 0), keys[key[0]], names[key[1]])
        for key in differing
    ]


def minutes_parity_description(mismatches: Sequence[MinutesMismatch]) -> str | None:
    """Who and which days differ, or None when nothing does."""
    if not mismatches:
        return None
    verb = "differs" if len(mismatches) == 1 else "differ"
    return describe(
        f"{_plural(len(mismatches), 'employee-day')} {verb} from Assignar (Pay's minutes "
        "first; a correction made in Pay shows here until Assignar says the same):",
        [m.describe() for m in mismatches],
        len(mismatches),
    )


def _connection_keys(conn: Connection, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    query = sa.select(connection_table.c.id, connection_table.c.key)
    return dict(conn.execute(query.where(connection_table.c.id.in_(ids))).all())


def _employee_names(conn: Connection, ids: set[int]) -> dict[int, str]:
    """Pay employee id → "First Last (number)", as a payroll clerk finds them in Pay."""
    if not ids:
        return {}
    rows = conn.execute(sa.select(employee).where(employee.c.id.in_(ids))).all()
    return {
        r.id: f"{r.first_name} {r.last_name} ({r.employee_number or f'Pay employee {r.id}'})"
        for r in rows
    }


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
    connections: Sequence, duplicates: Sequence[DuplicateTimesheet]
) -> list[Finding]:
    found = []
    for c in connections:
        mine = [d for d in duplicates if d.connection == c.key]
        reasons = tuple(d.describe() for d in mine[:FIRST_REASONS])
        found.append(Finding(c.key, bool(mine), len(mine), reasons))
    return found


def parity_findings(connections: Sequence, mismatches: Sequence[MinutesMismatch]) -> list[Finding]:
    found = []
    for c in connections:
        mine = [m for m in mismatches if m.connection_id == c.id]
        reasons = tuple(m.describe() for m in mine[:FIRST_REASONS])
        found.append(Finding(c.key, bool(mine), len(mine), reasons))
    return found


def sync_warning_description(
    conn: Connection, warned: dict[str, ConnectionStatus], kinds: Sequence[str]
) -> str | None:
    """Each warned connection's state, then its conflicts of `kinds` that hold the most records
    (who, which days): the ones to resolve first."""
    if not warned:
        return None
    named = []
    for key in warned:
        for v in list_conflicts(conn, connection_key=key, status="open"):
            if v.kind in kinds:
                held = ", ".join(_plural(n, e) for e, n in sorted(v.held.items())) or "nothing"
                days = (
                    f" of {format_window(v.held_dates[0], v.held_dates[1] + timedelta(days=1))}"
                    if v.held_dates
                    else ""
                )
                line = f"{key} {v.id[:8]} {v.label}: {v.summary} (holds {held}{days})"
                named.append((-sum(v.held.values()), line))
    lines = [line for _, line in sorted(named, key=lambda n: n[0])]
    headline = "\n".join(f"{key}: {s.describe()}" for key, s in warned.items())
    return describe(headline, lines, len(lines), "the command")

"""Assignar's approved timesheets into Pay, one row per source, priced at Pay's rate.

Two tiers: `timesheet_plan` decides and writes the clean ones in SQL (linked, unlocked, Pay's rate
agreeing with Assignar's) and `load_timesheets` goes record by record only through the rest, the
ones that meet a conflict, a hold or Pay's lock (processed or paid: never changed; a later
upstream change becomes an adjustment conflict).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from assignar_pipeline.load.common import (
    LoadCounts,
    existing_by_source,
    finish_load,
    source_hash_of,
)
from assignar_pipeline.load.pricing import Pricer, Pricing
from assignar_pipeline.load.timesheet_plan import clear, plan_and_write, remaining_staged
from assignar_pipeline.pay.tables import pay_code, timesheet, timesheet_adjustment, timesheet_line
from assignar_pipeline.reconcile.conflicts import (
    DUPLICATE_PROJECT,
    KIND_LABELS,
    LOCKED_CHANGED,
    RATE_DIFFERENCE,
    WORKER_MISMATCH,
    ConflictBook,
    Hold,
    short,
)
from assignar_pipeline.reconcile.links import links
from assignar_pipeline.reconcile.policy import APPROVED_STATUSES, LOCKED_STATUSES, thresholds_for
from assignar_pipeline.reconcile.rates import ORDINARY, amount, price_hash
from assignar_pipeline.staging import refresh_statistics


def effective_minutes(conn: Connection, timesheet_ids: list[int]) -> dict[int, int]:
    """Approved adjustment minutes per Pay timesheet (Pay's minutes = payable + these)."""
    if not timesheet_ids:
        return {}
    rows = conn.execute(
        sa.select(
            timesheet_adjustment.c.timesheet_id,
            sa.func.sum(timesheet_adjustment.c.delta_minutes),
        )
        .where(
            timesheet_adjustment.c.timesheet_id.in_(timesheet_ids),
            timesheet_adjustment.c.status == "approved",
        )
        .group_by(timesheet_adjustment.c.timesheet_id)
    ).all()
    return {tid: int(total) for tid, total in rows}


def load_timesheets(
    conn: Connection, connection: Any, now: datetime, window: tuple[date, date]
) -> LoadCounts:
    """Make Pay's timesheets for the window equal Assignar's approved ones, one row per source:
    priced at Pay's rate, held while their worker, project or rate waits on a conflict."""
    counts = LoadCounts()
    book = ConflictBook(conn, connection.id, now)
    # The clean path in SQL; what needs a conflict, a hold or a lock decision stays below.
    pay_code_id = conn.execute(
        sa.select(pay_code.c.id).where(
            pay_code.c.team_id == connection.team_id, pay_code.c.code == ORDINARY
        )
    ).scalar()
    tolerance = thresholds_for(conn, connection.id).rate_tolerance
    planned = plan_and_write(conn, connection, window, pay_code_id, tolerance)
    for outcome, (n, minutes) in planned.totals.items():
        counts.add(outcome, n, minutes)
    counts.records.update(planned.records)
    refresh_statistics(conn, [timesheet, timesheet_line], planned.written)
    staged_rows = remaining_staged(conn, connection.id)
    clear(conn)
    holds: dict[int, Hold] = {}
    writes = _TimesheetWrites(conn)
    if staged_rows:
        workers = links(conn, connection.id, "worker")
        projects = links(conn, connection.id, "project")
        worker_conflicts = book.open_by_subject(WORKER_MISMATCH)
        project_conflicts = book.open_by_subject(DUPLICATE_PROJECT)
        pricer = Pricer(conn, connection, book)
        existing = existing_by_source(
            conn, timesheet, connection.id, [s.assignar_id for s in staged_rows]
        )
    for staged in staged_rows:
        current = existing.get(staged.assignar_id)
        locked = current is not None and (
            current.locked_at is not None or current.status in LOCKED_STATUSES
        )
        minutes = staged.total_minutes
        if staged.voided_at is not None or staged.status not in APPROVED_STATUSES:
            deleted = staged.voided_at is not None
            reason = "deleted in Assignar" if deleted else f"{staged.status} in Assignar"
            outcome = "voided" if deleted else "ignored"
            if current is not None and current.status != "void":
                if locked:
                    state = "deleted" if deleted else f"unapproved:{staged.status}"
                    row = _locked_changed(book, staged, current, state, reason)
                    if row.status != "resolved":
                        holds[staged.assignar_id] = _adjustment_hold(staged, row)
                        counts.count("held", minutes, staged.assignar_id)
                        continue
                else:
                    writes.void(current.id, reason)
            counts.count(outcome, minutes, staged.assignar_id)
            continue
        worker = workers.get(staged.user_assignar_id)
        if worker is not None and worker.pay_id is None:
            # the worker is deliberately not paid through Pay
            counts.count("ignored", minutes, staged.assignar_id)
            continue
        problems: list[str] = []
        waits_on: list[str] = []
        if worker is None:
            cid = worker_conflicts.get(staged.user_assignar_id)
            problems.append(
                f"worker {staged.user_assignar_id}: {KIND_LABELS[WORKER_MISMATCH]} {short(cid)}"
                if cid
                else f"worker {staged.user_assignar_id} is not matched to a Pay employee"
            )
            waits_on += [cid] if cid else []
        project_link = projects.get(staged.project_assignar_id)
        if staged.project_assignar_id is not None and project_link is None:
            cid = project_conflicts.get(staged.project_assignar_id)
            problems.append(
                f"project {staged.project_assignar_id}: {KIND_LABELS[DUPLICATE_PROJECT]} "
                f"{short(cid)}"
                if cid
                else f"project {staged.project_assignar_id} is not matched to a Pay project"
            )
            waits_on += [cid] if cid else []
        if problems:
            holds[staged.assignar_id] = Hold("; ".join(problems), staged.work_date, tuple(waits_on))
            counts.count("held", minutes, staged.assignar_id)
            continue
        source_hash = source_hash_of(staged, worker, project_link)
        if locked:
            if current.source_hash == source_hash:
                counts.count("unchanged", minutes, staged.assignar_id)
                continue
            row = _locked_changed(
                book, staged, current, f"edited:{source_hash[:16]}", "edited in Assignar"
            )
            if row.status != "resolved":
                holds[staged.assignar_id] = _adjustment_hold(staged, row)
                counts.count("held", minutes, staged.assignar_id)
                continue
            decision = book.resolution(row.id).decision
            outcome = "adjusted" if decision == "accept_adjustment" else "ignored"
            counts.count(outcome, minutes, staged.assignar_id)
            continue
        pricing = pricer.price(
            staged, worker.pay_id, project_link.pay_id if project_link is not None else None
        )
        if not isinstance(pricing, Pricing):
            holds[staged.assignar_id] = Hold(
                f"{KIND_LABELS[RATE_DIFFERENCE]} {short(pricing.id)}: {pricing.summary}",
                staged.work_date,
                (pricing.id,),
            )
            counts.count("held", minutes, staged.assignar_id)
            continue
        values = _timesheet_values(connection, staged, worker, project_link, source_hash)
        values["price_hash"] = price_hash(
            (pricer.pay.pay_code_id, str(pricing.rate), pricing.rate_source, pricing.pay_rate_id,
             pricing.resolution_id)
        )  # fmt: skip
        lines = _line_rows(staged.lines, pricing, pricer.pay.pay_code_id)
        if current is None:
            writes.insert({**values, "source_version": 1}, lines)
            counts.count("inserted", minutes, staged.assignar_id)
        elif (
            current.source_hash == values["source_hash"]
            and current.price_hash == values["price_hash"]
            and current.status != "void"
        ):
            counts.count("unchanged", minutes, staged.assignar_id)
        else:
            values.update(void_reason=None, source_version=current.source_version + 1)
            writes.update(current.id, values, lines)
            counts.count("updated", minutes, staged.assignar_id)
    writes.flush()
    finish_load(conn, connection, "timesheet", book, holds, counts, now, window)
    book.supersede_unheld([RATE_DIFFERENCE, LOCKED_CHANGED])
    return counts


def _locked_changed(book: ConflictBook, staged: Any, current: Any, state: str, what: str) -> Any:
    """The adjustment conflict of a timesheet Pay has locked but Assignar changed."""
    new_minutes = (
        0 if state == "deleted" or state.startswith("unapproved") else staged.total_minutes
    )
    return book.observe(
        LOCKED_CHANGED,
        f"timesheet:{staged.assignar_id}:{state}",
        subject_entity="timesheet",
        subject_external_id=staged.assignar_id,
        summary=(
            f"Timesheet {staged.assignar_id} of {staged.work_date} is {current.status} in Pay "
            f"(#{current.id}, {current.payable_minutes} min) but was {what} "
            f"({staged.status}, {staged.total_minutes} min): an adjustment is needed"
        ),
        details={
            "timesheet": {
                "assignar_id": staged.assignar_id,
                "pay_id": current.id,
                "work_date": staged.work_date.isoformat(),
                "employee_id": current.employee_id,
            },
            "change": state.split(":")[0],
            "pay": {"status": current.status, "payable_minutes": current.payable_minutes},
            "assignar": {
                "status": staged.status,
                "total_minutes": staged.total_minutes,
                "deleted": staged.voided_at is not None,
            },
            "new_minutes": new_minutes,
        },
    )


def _adjustment_hold(staged: Any, row: Any) -> Hold:
    return Hold(
        f"{KIND_LABELS[LOCKED_CHANGED]} {short(row.id)}: locked in Pay, changed in Assignar",
        staged.work_date,
        (row.id,),
    )


def _timesheet_values(
    connection: Any, staged: Any, worker: Any, project_link: Any, source_hash: str
) -> dict:
    return {
        "team_id": connection.team_id,
        "employee_id": worker.pay_id,
        "project_id": project_link.pay_id if project_link is not None else None,
        "work_date": staged.work_date,
        "start_at": staged.start_at,
        "end_at": staged.end_at,
        "timezone": staged.timezone,
        "elapsed_minutes": int((staged.end_at - staged.start_at).total_seconds() // 60),
        "payable_minutes": staged.total_minutes,
        "status": "imported",
        "source_connection_id": connection.id,
        "source_external_id": staged.assignar_id,
        "source_status": staged.status + (" (processed)" if staged.processed else ""),
        "source_modified_at": staged.modified_time,
        "source_hash": source_hash,
    }


def _line_rows(lines: Iterable[dict], pricing: Pricing, pay_code_id: int | None) -> list[dict]:
    """A Pay timesheet's lines (without the timesheet id, known once it is written)."""
    rows = []
    for number, line in enumerate(lines, start=1):
        minutes = int(line.get("minutes") or 0)
        rows.append(
            {
                "line_no": number,
                "cost_code": line.get("cost_code"),
                "minutes": minutes,
                "source_item_ref": line.get("ref"),
                "pay_code_id": pay_code_id if pricing.rate is not None else None,
                "rate": pricing.rate,
                "amount": amount(minutes, pricing.rate),
                "rate_source": pricing.rate_source,
                "pay_rate_id": pricing.pay_rate_id,
                "resolution_id": pricing.resolution_id,
            }
        )
    return rows


class _TimesheetWrites:
    """A window's timesheet writes, sent as a few set-based statements instead of one or two
    per timesheet: a 31-day run of 400 workers spent most of its load in per-row round trips.

    Every write is of a different Pay timesheet, so their order within a window does not matter.
    """

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.inserts: list[tuple[dict, list[dict]]] = []
        self.updates: list[tuple[int, dict, list[dict]]] = []
        self.voids: list[dict] = []

    def insert(self, values: dict, lines: list[dict]) -> None:
        self.inserts.append((values, lines))

    def update(self, pay_id: int, values: dict, lines: list[dict]) -> None:
        self.updates.append((pay_id, values, lines))

    def void(self, pay_id: int, reason: str) -> None:
        self.voids.append({"pay_id": pay_id, "status": "void", "void_reason": reason})

    def flush(self) -> None:
        conn, lines = self.conn, []
        if self.voids:
            conn.execute(timesheet.update().where(timesheet.c.id == sa.bindparam("pay_id")),
                         self.voids)  # fmt: skip
        if self.updates:
            # Pay's lock is checked again in SQL: Pay may have locked the row meanwhile.
            conn.execute(
                timesheet.update().where(
                    timesheet.c.id == sa.bindparam("pay_id"), timesheet.c.locked_at.is_(None)
                ),
                [{"pay_id": pay_id, **values} for pay_id, values, _ in self.updates],
            )
            ids = [pay_id for pay_id, _, _ in self.updates]
            for start in range(0, len(ids), 5_000):
                conn.execute(
                    timesheet_line.delete().where(
                        timesheet_line.c.timesheet_id.in_(ids[start : start + 5_000])
                    )
                )
            lines += [(pay_id, rows) for pay_id, _, rows in self.updates]
        if self.inserts:
            ids = conn.execute(
                timesheet.insert().returning(timesheet.c.id, sort_by_parameter_order=True),
                [values for values, _ in self.inserts],
            ).scalars()
            lines += [(pay_id, rows) for pay_id, (_, rows) in zip(ids, self.inserts, strict=True)]
        rows = [{"timesheet_id": pay_id, **line} for pay_id, group in lines for line in group]
        if rows:
            conn.execute(timesheet_line.insert(), rows)
        refresh_statistics(conn, [timesheet, timesheet_line], len(self.inserts) + len(self.updates))
        self.inserts, self.updates, self.voids = [], [], []

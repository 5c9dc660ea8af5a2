"""Staging → Pay: link what is certain, load what is linked, hold the rest on a conflict.

Certain means an existing link, an exact project code, an exact employee number, a unique email,
or a normalised name with the same client (projects) or date of birth (workers); see
`reconcile/matching.py`. Anything else becomes a conflict (Duplicate Project, Worker Mismatch)
that a person resolves, and the timesheets and orders that depend on it are held in `sync_hold`,
counted, and loaded once it is resolved. A timesheet is priced at Pay's rate; where Assignar's
rate differs it waits on a Rate Difference conflict. A timesheet Pay has processed or paid is never
changed: a later upstream change becomes an adjustment conflict.

Each function runs inside the caller's transaction for one connection, so Pay never shows half a
window, and writes only rows whose content changed, so a re-run leaves Pay byte-for-byte equal.

Timesheets load in two tiers: `timesheet_plan` decides and writes the clean ones in SQL (linked,
unlocked, Pay's rate agreeing with Assignar's) and `load_timesheets` below goes record by record
only through the rest, the ones that meet a conflict, a hold or Pay's lock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from assignar_pipeline import timesheet_plan
from assignar_pipeline.pay.tables import (
    STAGING,
    employee,
    pay_code,
    pay_order,
    pay_order_line,
    project,
    team_feature,
    timesheet,
    timesheet_adjustment,
    timesheet_line,
)
from assignar_pipeline.reconcile.conflicts import (
    DUPLICATE_PROJECT,
    KIND_LABELS,
    LOCKED_CHANGED,
    RATE_DIFFERENCE,
    WORKER_MISMATCH,
    ConflictBook,
    Hold,
    conflict_id,
    replace_holds,
    short,
)
from assignar_pipeline.reconcile.links import PayClients, links, write_link
from assignar_pipeline.reconcile.matching import (
    PayEmployee,
    PayProject,
    ProjectFacts,
    WorkerFacts,
    match_project,
    match_worker,
)
from assignar_pipeline.reconcile.normalize import norm_code, norm_email, norm_name
from assignar_pipeline.reconcile.policy import (
    APPROVED_STATUSES,
    LOCKED_STATUSES,
    thresholds_for,
)
from assignar_pipeline.reconcile.rates import (
    ORDINARY,
    RATE_UNIT,
    PayRate,
    PayRates,
    amount,
    assignar_rates,
    differs,
    price_hash,
    rate_fingerprint,
    show_rate,
)
from assignar_pipeline.staging import refresh_statistics

__all__ = [
    "APPROVED_STATUSES",
    "LOCKED_STATUSES",
    "LoadCounts",
    "load_orders",
    "load_projects",
    "load_timesheets",
    "load_workers",
    "norm_code",
    "norm_email",
    "norm_name",
]

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


def _staged(conn: Connection, entity: str, connection_id: int, window=None) -> list[Any]:
    table = STAGING[entity]
    query = sa.select(table).where(table.c.connection_id == connection_id)
    if window is not None:
        query = query.where(table.c.work_date >= window[0], table.c.work_date < window[1])
    return conn.execute(query.order_by(table.c.assignar_id)).all()


def _finish(
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


# -- projects and clients -----------------------------------------------------------------------


def project_values(staged: Any, clients: PayClients) -> dict[str, Any]:
    """The Pay project fields Assignar decides for a project Assignar created."""
    return {
        "name": staged.name,
        "status": "active" if staged.active else "completed",
        "client_id": clients.ensure(staged),
    }


def load_projects(
    conn: Connection, connection: Any, now: datetime, window: None = None
) -> LoadCounts:
    """Link or create a Pay project for each staged Assignar project; hold possible duplicates
    on a Duplicate Project conflict with the candidates."""
    counts = LoadCounts()
    limits = thresholds_for(conn, connection.id)
    book = ConflictBook(conn, connection.id, now)
    linked = links(conn, connection.id, "project")
    clients = PayClients(conn, connection)
    pay_rows = conn.execute(sa.select(project).where(project.c.team_id == connection.team_id)).all()
    by_id = {p.id: p for p in pay_rows}
    pay_projects = [_pay_project(p, clients) for p in pay_rows]
    holds: dict[int, Hold] = {}
    undecided: list[tuple[Any, ProjectFacts]] = []
    for staged in _staged(conn, "projects", connection.id):
        if staged.voided_at is not None:
            continue  # deleted in Assignar: Pay keeps its project and the link
        link = linked.get(staged.assignar_id)
        if link is not None:
            current = by_id.get(link.pay_id)
            # Only the Assignar project that created a Pay project keeps it up to date: one
            # linked by code or merged into it (several may be) never overwrites it.
            if (
                current is not None
                and current.origin == "assignar"
                and link.match_rule == "created"
            ):
                values = project_values(staged, clients)
                if any(getattr(current, k) != v for k, v in values.items()):
                    conn.execute(project.update().where(project.c.id == current.id).values(values))
                    counts.count("updated")
                    continue
            counts.count("unchanged")
            continue
        fingerprint = f"project:{staged.assignar_id}"
        resolution = book.resolution(conflict_id(connection.id, DUPLICATE_PROJECT, fingerprint))
        if resolution is not None and resolution.target_pay_id in by_id:
            rule = "resolution_merge" if resolution.decision == "merge" else "resolution_create"
            write_link(
                conn,
                connection.id,
                "project",
                staged.assignar_id,
                resolution.target_pay_id,
                rule,
                resolution.id,
            )
            counts.count("linked")
            continue
        facts = ProjectFacts(
            staged.assignar_id, staged.name, staged.code, staged.client_name, clients.find(staged)
        )
        match = match_project(facts, pay_projects, limits.project_name)
        if match.linked:
            write_link(conn, connection.id, "project", staged.assignar_id, match.pay_id, match.rule)
            counts.count("linked")
        elif match.candidates:
            undecided.append((staged, facts))
        else:
            values = project_values(staged, clients)
            pay_id = conn.execute(
                project.insert()
                .values(team_id=connection.team_id, code=staged.code, origin="assignar", **values)
                .returning(project.c.id)
            ).scalar_one()
            write_link(conn, connection.id, "project", staged.assignar_id, pay_id, "created")
            created = conn.execute(sa.select(project).where(project.c.id == pay_id)).one()
            by_id[pay_id] = created
            pay_projects.append(_pay_project(created, clients))
            counts.count("inserted")
    # Decided against every project this pass created too (one created after a project was met
    # may be its exact code): the next sync then decides exactly the same.
    for staged, facts in undecided:
        match = match_project(facts, pay_projects, limits.project_name)
        if match.linked:
            write_link(conn, connection.id, "project", staged.assignar_id, match.pay_id, match.rule)
            counts.count("linked")
            continue
        row = book.observe(
            DUPLICATE_PROJECT,
            f"project:{staged.assignar_id}",
            subject_entity="project",
            subject_external_id=staged.assignar_id,
            summary=(
                f"Assignar project {staged.name!r} ({staged.code or 'no code'}) may be Pay's "
                f"{match.candidates[0]['name']!r} (#{match.candidates[0]['pay_id']}): "
                f"{match.reason}"
            ),
            details={
                "assignar": {
                    "id": staged.assignar_id,
                    "name": staged.name,
                    "code": staged.code,
                    "client": staged.client_name,
                    "client_code": staged.client_code,
                    "active": staged.active,
                },
                "reason": match.reason,
            },
            candidates=list(match.candidates),
        )
        holds[staged.assignar_id] = Hold(
            f"project {staged.assignar_id} {staged.name!r}: "
            f"{KIND_LABELS[DUPLICATE_PROJECT]} {short(row.id)} ({match.reason})",
            None,
            (row.id,),
        )
        counts.count("held")
    book.supersede_unseen([DUPLICATE_PROJECT])
    _finish(conn, connection, "project", book, holds, counts, now)
    return counts


def _pay_project(p: Any, clients: PayClients) -> PayProject:
    return PayProject(p.id, p.name, p.code, p.client_id, clients.names.get(p.client_id), p.status)


# -- workers ------------------------------------------------------------------------------------


def load_workers(
    conn: Connection, connection: Any, now: datetime, window: None = None
) -> LoadCounts:
    """Link each staged worker to a Pay employee by a certain key, or hold it on a Worker
    Mismatch conflict listing the closest Pay employees. Pay's employees are never overwritten."""
    counts = LoadCounts()
    limits = thresholds_for(conn, connection.id)
    book = ConflictBook(conn, connection.id, now)
    linked = links(conn, connection.id, "worker")
    employees = [
        PayEmployee(e.id, e.employee_number, e.first_name, e.last_name, e.email, e.dob, e.status)
        for e in conn.execute(
            sa.select(employee)
            .where(employee.c.team_id == connection.team_id)
            .order_by(employee.c.id)
        )
    ]
    known = {e.id for e in employees}
    staged_rows = [s for s in _staged(conn, "workers", connection.id) if s.voided_at is None]
    staged_emails: dict[str, int] = {}
    for s in staged_rows:
        email = norm_email(s.email)
        if email:
            staged_emails[email] = staged_emails.get(email, 0) + 1
    holds: dict[int, Hold] = {}
    for staged in staged_rows:
        if staged.assignar_id in linked:
            counts.count("unchanged")
            continue
        fingerprint = f"worker:{staged.assignar_id}"
        resolution = book.resolution(conflict_id(connection.id, WORKER_MISMATCH, fingerprint))
        if resolution is not None and (
            resolution.decision == "ignore" or resolution.target_pay_id in known
        ):
            pay_id = None if resolution.decision == "ignore" else resolution.target_pay_id
            rule = {"map": "resolution_map", "ignore": "ignored"}.get(
                resolution.decision, "resolution_create"
            )
            write_link(
                conn, connection.id, "worker", staged.assignar_id, pay_id, rule, resolution.id
            )
            counts.count("linked")
            continue
        facts = WorkerFacts(
            staged.assignar_id,
            staged.employee_id,
            staged.first_name,
            staged.last_name,
            staged.email,
            staged.dob,
        )
        match = match_worker(facts, employees, staged_emails, limits.worker_name)
        if match.linked:
            write_link(conn, connection.id, "worker", staged.assignar_id, match.pay_id, match.rule)
            counts.count("linked")
            continue
        name = f"{staged.first_name} {staged.last_name}"
        row = book.observe(
            WORKER_MISMATCH,
            fingerprint,
            subject_entity="worker",
            subject_external_id=staged.assignar_id,
            summary=f"Assignar worker {name} ({staged.employee_id or 'no employee id'}): "
            f"{match.reason}",
            details={
                "assignar": {
                    "id": staged.assignar_id,
                    "employee_id": staged.employee_id,
                    "name": name,
                    "email": staged.email,
                    "dob": staged.dob.isoformat() if staged.dob else None,
                    "active": staged.active,
                },
                "reason": match.reason,
            },
            candidates=list(match.candidates),
        )
        holds[staged.assignar_id] = Hold(
            f"worker {staged.assignar_id} {name}: {KIND_LABELS[WORKER_MISMATCH]} "
            f"{short(row.id)} ({match.reason})",
            None,
            (row.id,),
        )
        counts.count("held")
    book.supersede_unseen([WORKER_MISMATCH])
    _finish(conn, connection, "worker", book, holds, counts, now)
    return counts


# -- timesheets ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pricing:
    """The rate a timesheet's lines are paid at, and where it came from (NULL: Pay has none)."""

    rate: Any = None
    rate_source: str | None = None
    pay_rate_id: int | None = None
    resolution_id: int | None = None


class _Pricer:
    """Pay's rate for a timesheet, compared with Assignar's; a difference is a conflict."""

    def __init__(self, conn: Connection, connection: Any, book: ConflictBook) -> None:
        self.book = book
        self.connection = connection
        self.pay = PayRates(conn, connection.team_id, ORDINARY)
        self.assignar = assignar_rates(conn, connection.id, ORDINARY)
        self.tolerance = thresholds_for(conn, connection.id).rate_tolerance
        self.resolutions = {r.id: r for r in book.resolutions.values()}
        self._names: dict[int, Any] = {}
        self.conn = conn

    def price(self, staged: Any, employee_id: int, project_id: int | None) -> Pricing | Any:
        """A `Pricing`, or the open Rate Difference conflict row the timesheet waits on."""
        pay = self.pay.resolve(employee_id, project_id, staged.work_date)
        if pay is None:
            return Pricing()  # no Pay rate at all: nothing to disagree with; Pay's rules price it
        at_pay = Pricing(pay.rate, pay.scope, pay.id)
        theirs = self.assignar.get(staged.task_assignar_id)
        if theirs is None or not differs(theirs.rate, pay.rate, self.tolerance):
            return at_pay
        if self._agreed(pay, theirs.rate):
            return at_pay
        fingerprint = rate_fingerprint(employee_id, ORDINARY, None, theirs.rate, pay)
        row = self.book.observe(
            RATE_DIFFERENCE,
            fingerprint,
            subject_entity="worker",
            subject_external_id=staged.user_assignar_id,
            **self._describe(employee_id, theirs, pay),
        )
        if row.status != "resolved":
            return row
        resolution = self.book.resolution(row.id)
        if resolution.decision == "keep_pay_rate":
            return at_pay
        if resolution.apply_scope == "going_forward" and staged.work_date < (
            resolution.effective_from or staged.work_date
        ):
            return at_pay  # before the date the person chose, Pay's rate stands
        return Pricing(resolution.rate, "resolution", None, resolution.id)

    def _agreed(self, pay: PayRate, assignar_rate: Any) -> bool:
        """Pay's rate was set by a resolution made while Assignar said exactly this rate."""
        if not pay.source.endswith("_resolution") or not pay.source_ref:
            return False
        resolution = self.resolutions.get(int(pay.source_ref))
        if resolution is None:
            return False
        conflict = self.book.rows.get(resolution.conflict_id)
        said = conflict.details.get("assignar", {}).get("rate") if conflict else None
        return said == str(assignar_rate.quantize(RATE_UNIT))

    def _describe(self, employee_id: int, theirs: Any, pay: PayRate) -> dict[str, Any]:
        person = self._names.get(employee_id)
        if person is None:
            person = self.conn.execute(
                sa.select(
                    employee.c.first_name, employee.c.last_name, employee.c.employee_number
                ).where(employee.c.id == employee_id)
            ).one()
            self._names[employee_id] = person
        name = f"{person.first_name} {person.last_name}"
        assignar_rate = str(theirs.rate.quantize(RATE_UNIT))
        until = f" until {pay.effective_to}" if pay.effective_to else ""
        return {
            "summary": (
                f"{name} ({person.employee_number or 'no employee number'}) {ORDINARY}: Assignar "
                f"{show_rate(theirs.rate)} ({theirs.source}), Pay {show_rate(pay.rate)} "
                f"({pay.scope} rate from "
                f"{pay.effective_from}{until})"
            ),
            "details": {
                "employee": {
                    "id": employee_id,
                    "name": name,
                    "employee_number": person.employee_number,
                },
                "pay_code": ORDINARY,
                "project_id": None,
                "assignar": {
                    "rate": assignar_rate,
                    "source": theirs.source,
                    "task_id": theirs.task_id,
                    "group_id": theirs.group_id,
                },
                "pay": {
                    "rate": str(pay.rate),
                    "pay_rate_id": pay.id,
                    "scope": pay.scope,
                    "effective_from": pay.effective_from.isoformat(),
                    "effective_to": pay.effective_to.isoformat() if pay.effective_to else None,
                    "source": pay.source,
                },
                "tolerance": str(self.tolerance),
            },
        }


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
    planned = timesheet_plan.plan_and_write(conn, connection, window, pay_code_id, tolerance)
    for outcome, (n, minutes) in planned.totals.items():
        counts.add(outcome, n, minutes)
    counts.records.update(planned.records)
    refresh_statistics(conn, [timesheet, timesheet_line], planned.written)
    staged_rows = timesheet_plan.remaining_staged(conn, connection.id)
    timesheet_plan.clear(conn)
    holds: dict[int, Hold] = {}
    writes = _TimesheetWrites(conn)
    if staged_rows:
        workers = links(conn, connection.id, "worker")
        projects = links(conn, connection.id, "project")
        worker_conflicts = book.open_by_subject(WORKER_MISMATCH)
        project_conflicts = book.open_by_subject(DUPLICATE_PROJECT)
        pricer = _Pricer(conn, connection, book)
        existing = _existing(conn, timesheet, connection.id, [s.assignar_id for s in staged_rows])
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
        source_hash = _source_hash(staged, worker, project_link)
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
    _finish(conn, connection, "timesheet", book, holds, counts, now, window)
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


def _source_hash(staged: Any, worker: Any, project_link: Any) -> str:
    """What the Pay row was built from: the staged content and the links it resolved through."""
    pay_ids = (worker.pay_id if worker else None, project_link.pay_id if project_link else None)
    return hashlib.sha256(f"{staged.content_hash}:{pay_ids}".encode()).hexdigest()


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


def _existing(conn: Connection, table: sa.Table, connection_id: int, ids: list[int]) -> dict:
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


# -- orders -------------------------------------------------------------------------------------


def load_orders(
    conn: Connection, connection: Any, now: datetime, window: tuple[date, date]
) -> LoadCounts:
    """Confirmed orders into Pay's job costing, for teams that have it and asked for orders."""
    counts = LoadCounts()
    staged_rows = _staged(conn, "orders", connection.id, window)
    if not (connection.import_orders and has_feature(conn, connection.team_id, "job_costing")):
        for _ in staged_rows:
            counts.count("ignored")
        return counts
    book = ConflictBook(conn, connection.id, now)
    project_conflicts = book.open_by_subject(DUPLICATE_PROJECT)
    projects = links(conn, connection.id, "project")
    existing = _existing(conn, pay_order, connection.id, [s.assignar_id for s in staged_rows])
    holds: dict[int, Hold] = {}
    for staged in staged_rows:
        current = existing.get(staged.assignar_id)
        if staged.voided_at is not None:
            if current is not None and not current.voided:
                conn.execute(
                    pay_order.update().where(pay_order.c.id == current.id).values(voided=True)
                )
            counts.count("voided")
            continue
        project_link = projects.get(staged.project_assignar_id)
        if staged.project_assignar_id is not None and project_link is None:
            cid = project_conflicts.get(staged.project_assignar_id)
            holds[staged.assignar_id] = Hold(
                f"project {staged.project_assignar_id}: {KIND_LABELS[DUPLICATE_PROJECT]} "
                f"{short(cid)}"
                if cid
                else f"project {staged.project_assignar_id} is not matched to a Pay project",
                staged.work_date,
                (cid,) if cid else (),
            )
            counts.count("held")
            continue
        values = {
            "team_id": connection.team_id,
            "project_id": project_link.pay_id if project_link is not None else None,
            "order_number": staged.job_number,
            "po_number": staged.po_number,
            "status": f"assignar-status-{staged.status_id}",
            "start_date": staged.work_date,
            "end_date": staged.end_date,
            "description": staged.description,
            "voided": False,
            "source_connection_id": connection.id,
            "source_external_id": staged.assignar_id,
            "source_hash": _source_hash(staged, None, project_link),
        }
        if current is None:
            pay_id = conn.execute(
                pay_order.insert().values(values).returning(pay_order.c.id)
            ).scalar_one()
            _write_order_lines(conn, pay_id, staged.lines)
            counts.count("inserted")
        elif current.source_hash == values["source_hash"] and not current.voided:
            counts.count("unchanged")
        else:
            conn.execute(pay_order.update().where(pay_order.c.id == current.id).values(values))
            conn.execute(pay_order_line.delete().where(pay_order_line.c.order_id == current.id))
            _write_order_lines(conn, current.id, staged.lines)
            counts.count("updated")
    _finish(conn, connection, "order", book, holds, counts, now, window)
    return counts


def _write_order_lines(conn: Connection, order_id: int, lines: Iterable[dict]) -> None:
    rows = [
        {
            "order_id": order_id,
            "line_no": number,
            "cost_code": line.get("cost_code"),
            "description": line.get("description"),
            "quantity": line.get("quantity") or "0",
            "unit": line.get("unit"),
        }
        for number, line in enumerate(lines, start=1)
    ]
    if rows:
        conn.execute(pay_order_line.insert(), rows)


def has_feature(conn: Connection, team_id: int, feature: str) -> bool:
    return bool(
        conn.execute(
            sa.select(team_feature.c.enabled).where(
                team_feature.c.team_id == team_id, team_feature.c.feature == feature
            )
        ).scalar()
    )

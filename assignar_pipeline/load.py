"""Staging → Pay: link what is certain, load what is linked, hold what is not — never guess.

Certain means an existing link, an exact project code, an exact employee number or a unique
email. Everything else (a project whose name matches a Pay project without a code, a worker with
no certain match) is held in `sync_hold` with its reason, counted, and left for reconciliation.
Each function runs inside the caller's transaction for one connection, so Pay never shows half a
window, and writes only rows whose content changed, so a re-run leaves Pay byte-for-byte equal.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from assignar_pipeline.pay.tables import (
    STAGING,
    client,
    employee,
    integration_link,
    pay_order,
    pay_order_line,
    project,
    sync_hold,
    team_feature,
    timesheet,
    timesheet_line,
)

#: Assignar statuses at or above which a timesheet is imported (Pay's default threshold).
APPROVED_STATUSES = frozenset(
    {
        "APPROVED",
        "APPROVED_WITH_PAY_RATES",
        "APPROVED_WITH_CHARGE_RATES",
        "APPROVED_WITH_PAY_AND_CHARGE_RATES",
    }
)
LOCKED_STATUSES = frozenset({"processed", "paid"})


@dataclass
class LoadCounts:
    """What one load did; `minutes` tracks the same outcomes in minutes (conservation)."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    voided: int = 0
    held: int = 0
    ignored: int = 0
    linked: int = 0
    minutes: dict[str, int] = field(default_factory=dict)
    hold_reasons: list[str] = field(default_factory=list)

    def count(self, outcome: str, minutes: int = 0) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)
        self.minutes[outcome] = self.minutes.get(outcome, 0) + minutes

    def as_metadata(self) -> dict[str, Any]:
        return {
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "voided": self.voided,
            "held": self.held,
            "ignored": self.ignored,
            "linked": self.linked,
        }


# -- normalisation ------------------------------------------------------------------------------


def norm_code(value: str | None) -> str | None:
    """Codes compare exactly after Unicode, case and whitespace folding; nothing fuzzier."""
    if value is None:
        return None
    folded = " ".join(unicodedata.normalize("NFKC", value).split()).casefold()
    return folded or None


def norm_name(value: str | None) -> str:
    """Names for spotting a possible duplicate (never for linking): punctuation is noise."""
    text = unicodedata.normalize("NFKC", value or "").casefold().replace("&", " and ")
    return " ".join(re.sub(r"[^\w]+", " ", text).split())


def norm_email(value: str | None) -> str | None:
    return value.strip().casefold() or None if value else None


# -- links and holds ----------------------------------------------------------------------------


def links(conn: Connection, connection_id: int, entity: str) -> dict[int, Any]:
    """Assignar id → link row for one entity of a connection."""
    rows = conn.execute(
        sa.select(integration_link).where(
            integration_link.c.connection_id == connection_id, integration_link.c.entity == entity
        )
    )
    return {row.external_id: row for row in rows}


def _link(
    conn: Connection, connection_id: int, entity: str, external_id: int, pay_id: int, rule: str
) -> None:
    conn.execute(
        integration_link.insert().values(
            connection_id=connection_id,
            entity=entity,
            external_id=external_id,
            pay_id=pay_id,
            match_rule=rule,
        )
    )


def _replace_holds(
    conn: Connection,
    connection_id: int,
    entity: str,
    holds: dict[int, tuple[str, date | None]],
    now: datetime,
    *,
    window: tuple[date, date] | None = None,
) -> None:
    """Make sync_hold hold exactly `holds` for this entity (and window), keeping held_since."""
    where = [sync_hold.c.connection_id == connection_id, sync_hold.c.entity == entity]
    if window is not None:
        where += [sync_hold.c.work_date >= window[0], sync_hold.c.work_date < window[1]]
    current = {row.assignar_id: row for row in conn.execute(sa.select(sync_hold).where(*where))}
    released = [i for i in current if i not in holds]
    if released:
        conn.execute(sync_hold.delete().where(*where, sync_hold.c.assignar_id.in_(released)))
    for assignar_id, (reason, work_date) in holds.items():
        old = current.get(assignar_id)
        if old is None:
            conn.execute(
                sync_hold.delete().where(
                    sync_hold.c.connection_id == connection_id,
                    sync_hold.c.entity == entity,
                    sync_hold.c.assignar_id == assignar_id,
                )
            )
            conn.execute(
                sync_hold.insert().values(
                    connection_id=connection_id,
                    entity=entity,
                    assignar_id=assignar_id,
                    work_date=work_date,
                    reason=reason,
                    held_since=now,
                )
            )
        elif old.reason != reason:
            conn.execute(
                sync_hold.update()
                .where(*where, sync_hold.c.assignar_id == assignar_id)
                .values(reason=reason)
            )


def _staged(conn: Connection, entity: str, connection_id: int, window=None) -> list[Any]:
    table = STAGING[entity]
    query = sa.select(table).where(table.c.connection_id == connection_id)
    if window is not None:
        query = query.where(table.c.work_date >= window[0], table.c.work_date < window[1])
    return conn.execute(query.order_by(table.c.assignar_id)).all()


# -- projects and clients -----------------------------------------------------------------------


def load_projects(
    conn: Connection, connection: Any, now: datetime, window: None = None
) -> LoadCounts:
    """Link or create a Pay project for each staged Assignar project (see module docstring)."""
    counts = LoadCounts()
    linked = links(conn, connection.id, "project")
    pay_projects = conn.execute(
        sa.select(project).where(project.c.team_id == connection.team_id)
    ).all()
    by_code = {norm_code(p.code): p for p in pay_projects if p.code}
    by_name: dict[str, list[Any]] = {}
    for p in pay_projects:
        by_name.setdefault(norm_name(p.name), []).append(p)
    holds: dict[int, tuple[str, date | None]] = {}
    for staged in _staged(conn, "projects", connection.id):
        if staged.voided_at is not None:
            continue  # deleted in Assignar: Pay keeps its project and the link
        link = linked.get(staged.assignar_id)
        values = {
            "name": staged.name,
            "status": "active" if staged.active else "completed",
            "client_id": _client_id(conn, connection, staged, counts),
        }
        if link is not None:
            current = next((p for p in pay_projects if p.id == link.pay_id), None)
            if (
                current is not None
                and current.origin == "assignar"
                and any(getattr(current, k) != v for k, v in values.items())
            ):
                conn.execute(project.update().where(project.c.id == link.pay_id).values(values))
                counts.count("updated")
            else:
                counts.count("unchanged")
            continue
        exact = by_code.get(norm_code(staged.code)) if staged.code else None
        if exact is not None:
            _link(conn, connection.id, "project", staged.assignar_id, exact.id, "exact_code")
            counts.count("linked")
            continue
        namesakes = by_name.get(norm_name(staged.name), [])
        if namesakes:
            names = ", ".join(f"#{p.id} {p.name!r}" for p in namesakes)
            holds[staged.assignar_id] = (f"possible duplicate of Pay project {names}", None)
            counts.count("held")
            continue
        pay_id = conn.execute(
            project.insert()
            .values(team_id=connection.team_id, code=staged.code, origin="assignar", **values)
            .returning(project.c.id)
        ).scalar_one()
        _link(conn, connection.id, "project", staged.assignar_id, pay_id, "created")
        counts.count("inserted")
    counts.hold_reasons = [reason for reason, _ in holds.values()][:5]
    _replace_holds(conn, connection.id, "project", holds, now)
    return counts


def _client_id(conn: Connection, connection: Any, staged: Any, counts: LoadCounts) -> int | None:
    """The Pay client of a staged project: linked, or the one with its exact code, or new."""
    if staged.client_assignar_id is None:
        return None
    link = conn.execute(
        sa.select(integration_link.c.pay_id).where(
            integration_link.c.connection_id == connection.id,
            integration_link.c.entity == "client",
            integration_link.c.external_id == staged.client_assignar_id,
        )
    ).first()
    if link is not None:
        return link.pay_id
    existing = None
    if staged.client_code:
        existing = conn.execute(
            sa.select(client.c.id).where(
                client.c.team_id == connection.team_id, client.c.code == staged.client_code
            )
        ).first()
    if existing is not None:
        pay_id, rule = existing.id, "exact_code"
    else:
        pay_id = conn.execute(
            client.insert()
            .values(
                team_id=connection.team_id,
                code=staged.client_code,
                name=staged.client_name
                or staged.client_code
                or f"Client {staged.client_assignar_id}",
            )
            .returning(client.c.id)
        ).scalar_one()
        rule = "created"
    _link(conn, connection.id, "client", staged.client_assignar_id, pay_id, rule)
    return pay_id


# -- workers ------------------------------------------------------------------------------------


def load_workers(
    conn: Connection, connection: Any, now: datetime, window: None = None
) -> LoadCounts:
    """Link each staged worker to a Pay employee by employee number or unique email, or hold."""
    counts = LoadCounts()
    linked = links(conn, connection.id, "worker")
    employees = conn.execute(
        sa.select(employee).where(employee.c.team_id == connection.team_id)
    ).all()
    by_number: dict[str, list[Any]] = {}
    by_email: dict[str, list[Any]] = {}
    for e in employees:
        if e.employee_number:
            by_number.setdefault(norm_code(e.employee_number), []).append(e)
        if e.email:
            by_email.setdefault(norm_email(e.email), []).append(e)
    staged_rows = [s for s in _staged(conn, "workers", connection.id) if s.voided_at is None]
    staged_emails: dict[str | None, int] = {}
    for s in staged_rows:
        staged_emails[norm_email(s.email)] = staged_emails.get(norm_email(s.email), 0) + 1
    holds: dict[int, tuple[str, date | None]] = {}
    for staged in staged_rows:
        if staged.assignar_id in linked:
            counts.count("unchanged")
            continue
        number = norm_code(staged.employee_id)
        email = norm_email(staged.email)
        by_num = by_number.get(number, []) if number else []
        if len(by_num) == 1:
            _link(
                conn, connection.id, "worker", staged.assignar_id, by_num[0].id, "employee_number"
            )
            counts.count("linked")
            continue
        by_mail = by_email.get(email, []) if email else []
        contradicts = (
            len(by_mail) == 1
            and number is not None
            and by_mail[0].employee_number is not None
            and norm_code(by_mail[0].employee_number) != number
        )
        if len(by_mail) == 1 and staged_emails[email] == 1 and not contradicts:
            _link(conn, connection.id, "worker", staged.assignar_id, by_mail[0].id, "email")
            counts.count("linked")
            continue
        if contradicts:
            reason = (
                f"email matches Pay employee #{by_mail[0].id} but employee numbers differ "
                f"({staged.employee_id!r} in Assignar, {by_mail[0].employee_number!r} in Pay)"
            )
        elif len(by_num) > 1 or len(by_mail) > 1 or (email and staged_emails[email] > 1):
            reason = "several Pay employees or Assignar workers share this number or email"
        else:
            reason = "no Pay employee with this employee number or email"
        name = f"{staged.first_name} {staged.last_name}"
        holds[staged.assignar_id] = (f"worker {name}: {reason}", None)
        counts.count("held")
    counts.hold_reasons = [reason for reason, _ in holds.values()][:5]
    _replace_holds(conn, connection.id, "worker", holds, now)
    return counts


# -- timesheets ---------------------------------------------------------------------------------


def load_timesheets(
    conn: Connection, connection: Any, now: datetime, window: tuple[date, date]
) -> LoadCounts:
    """Make Pay's timesheets for the window equal Assignar's approved ones, one row per source."""
    counts = LoadCounts()
    workers = links(conn, connection.id, "worker")
    projects = links(conn, connection.id, "project")
    staged_rows = _staged(conn, "timesheets", connection.id, window)
    existing = _existing(conn, timesheet, connection.id, [s.assignar_id for s in staged_rows])
    holds: dict[int, tuple[str, date | None]] = {}
    for staged in staged_rows:
        current = existing.get(staged.assignar_id)
        locked = current is not None and (
            current.locked_at is not None or current.status in LOCKED_STATUSES
        )
        minutes = staged.total_minutes
        if staged.voided_at is not None or staged.status not in APPROVED_STATUSES:
            reason = "deleted in Assignar" if staged.voided_at else f"{staged.status} in Assignar"
            outcome = "voided" if staged.voided_at else "ignored"
            if current is not None and current.status != "void":
                if locked:
                    holds[staged.assignar_id] = (
                        f"locked in Pay but {reason}: needs an adjustment",
                        staged.work_date,
                    )
                    counts.count("held", minutes)
                    continue
                conn.execute(
                    timesheet.update()
                    .where(timesheet.c.id == current.id)
                    .values(status="void", void_reason=reason)
                )
            counts.count(outcome, minutes)
            continue
        worker = workers.get(staged.user_assignar_id)
        if worker is not None and worker.pay_id is None:
            counts.count("ignored", minutes)  # the worker is deliberately not paid through Pay
            continue
        problems = []
        if worker is None:
            problems.append(f"worker {staged.user_assignar_id} is not matched to a Pay employee")
        project_link = projects.get(staged.project_assignar_id)
        if staged.project_assignar_id is not None and project_link is None:
            problems.append(f"project {staged.project_assignar_id} is not matched to a Pay project")
        changed = current is not None and current.source_hash != _source_hash(
            staged, worker, project_link
        )
        if locked and not problems and changed:
            problems.append("locked in Pay but changed in Assignar: needs an adjustment")
        if problems:
            holds[staged.assignar_id] = ("; ".join(problems), staged.work_date)
            counts.count("held", minutes)
            continue
        values = _timesheet_values(connection, staged, worker, project_link)
        if current is None:
            pay_id = conn.execute(
                timesheet.insert().values(**values, source_version=1).returning(timesheet.c.id)
            ).scalar_one()
            _write_lines(conn, pay_id, staged.lines)
            counts.count("inserted", minutes)
        elif current.source_hash == values["source_hash"] and current.status != "void":
            counts.count("unchanged", minutes)
        else:
            conn.execute(
                timesheet.update()
                .where(timesheet.c.id == current.id)
                .values(**values, void_reason=None, source_version=current.source_version + 1)
            )
            conn.execute(timesheet_line.delete().where(timesheet_line.c.timesheet_id == current.id))
            _write_lines(conn, current.id, staged.lines)
            counts.count("updated", minutes)
    counts.hold_reasons = [reason for reason, _ in holds.values()][:5]
    _replace_holds(conn, connection.id, "timesheet", holds, now, window=window)
    return counts


def _timesheet_values(connection: Any, staged: Any, worker: Any, project_link: Any) -> dict:
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
        "source_hash": _source_hash(staged, worker, project_link),
    }


def _source_hash(staged: Any, worker: Any, project_link: Any) -> str:
    """What the Pay row was built from: the staged content and the links it resolved through."""
    pay_ids = (worker.pay_id if worker else None, project_link.pay_id if project_link else None)
    return hashlib.sha256(f"{staged.content_hash}:{pay_ids}".encode()).hexdigest()


def _write_lines(conn: Connection, timesheet_id: int, lines: Iterable[dict]) -> None:
    rows = [
        {
            "timesheet_id": timesheet_id,
            "line_no": number,
            "cost_code": line.get("cost_code"),
            "minutes": int(line.get("minutes") or 0),
            "source_item_ref": line.get("ref"),
        }
        for number, line in enumerate(lines, start=1)
    ]
    if rows:
        conn.execute(timesheet_line.insert(), rows)


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
    projects = links(conn, connection.id, "project")
    existing = _existing(conn, pay_order, connection.id, [s.assignar_id for s in staged_rows])
    holds: dict[int, tuple[str, date | None]] = {}
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
            holds[staged.assignar_id] = (
                f"project {staged.project_assignar_id} is not matched to a Pay project",
                staged.work_date,
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
    counts.hold_reasons = [reason for reason, _ in holds.values()][:5]
    _replace_holds(conn, connection.id, "order", holds, now, window=window)
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

"""Resolving conflicts: check the choice, record it (who, when), apply it, load what it unblocks.

A resolution is a durable rule: the link it writes (or the Pay rate it adds, or the adjustment it
records) is what later syncs follow, and the loaders replay the resolution itself where its
effect is a rate choice. Resolutions are append-only; resolving a conflict again with the same
choice changes nothing, and with another choice is refused. Everything happens in one
transaction under the connection's write lock, including re-loading the held timesheets and
orders from staging, so a resolved conflict's records are in Pay when the call returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from assignar_pipeline.connections import ConnectionRow, all_connections
from assignar_pipeline.load import LoadCounts, effective_minutes, load_orders, load_timesheets
from assignar_pipeline.pay.database import lock_connection
from assignar_pipeline.pay.tables import (
    employee,
    pay_rate,
    pay_user,
    project,
    role_permission,
    staging_project,
    staging_worker,
    sync_conflict,
    sync_hold,
    sync_resolution,
    team,
    team_member,
    team_role,
    timesheet,
    timesheet_adjustment,
    timesheet_line,
)
from assignar_pipeline.reconcile.conflicts import (
    CHOICES,
    DUPLICATE_PROJECT,
    KIND_LABELS,
    PERMISSIONS,
    WORKER_MISMATCH,
    ResolutionError,
    find_conflict,
    held_by,
    release_holds,
    short,
)
from assignar_pipeline.reconcile.links import PayClients, write_link
from assignar_pipeline.reconcile.normalize import norm_code
from assignar_pipeline.reconcile.rates import (
    CENT,
    ORDINARY,
    RATE_UNIT,
    PayRates,
    scope_key,
    show_rate,
)
from assignar_pipeline.synclog import log_load

SCOPES = ("going_forward", "occurrence")


@dataclass(frozen=True)
class Choice:
    """One decision, as the CLI and the Launchpad take it."""

    conflict: str  # id, or its first 6+ characters
    choice: str
    target: int | None = None  # merge: Pay project id; map: Pay employee id
    code: str | None = None  # create_new: Pay project code (None: Assignar's; "": none)
    employee_number: str | None = None  # create_employee (None: Assignar's; "": none)
    rate: Decimal | None = None  # set_rate
    scope: str | None = None  # rates: going_forward (a new Pay rate) | occurrence
    effective_from: date | None = None  # going_forward: default the earliest held work date
    note: str | None = None


@dataclass
class Resolved:
    conflict_id: str
    connection_key: str
    kind: str
    decision: str
    resolution_id: int
    already: bool
    effect: str


@dataclass
class ResolveResult:
    resolved: list[Resolved] = field(default_factory=list)
    #: Connection key → the work dates whose held timesheets or orders are now loaded.
    unblocked: dict[str, list[date]] = field(default_factory=dict)
    #: Connection key → how many held records were loaded.
    released: dict[str, int] = field(default_factory=dict)


def resolve_conflicts(
    engine: Engine,
    choices: Sequence[Choice],
    decided_by: str,
    *,
    now: datetime | None = None,
    run_id: str = "resolve",
) -> ResolveResult:
    """Apply `choices` (all or nothing) as the Pay user `decided_by` (an email)."""
    if not choices:
        raise ResolutionError("No resolution given: name a conflict and a choice.")
    now = now or datetime.now(UTC)
    connections = {c.id: c for c in all_connections(engine)}
    result = ResolveResult()
    with engine.begin() as conn:
        found = [(choice, find_conflict(conn, choice.conflict)) for choice in choices]
        for connection_id in sorted({row.connection_id for _, row in found}):
            lock_connection(conn, connection_id)
        before = held_by(conn, [row.id for _, row in found])
        for choice, row in found:
            row = conn.execute(sa.select(sync_conflict).where(sync_conflict.c.id == row.id)).one()
            connection = connections[row.connection_id]
            user_id = _decider(conn, connection, row.kind, decided_by)
            result.resolved.append(_resolve_one(conn, connection, row, choice, user_id, now))
        _reload(conn, connections, before, result, now, run_id)
    return result


# -- who decides --------------------------------------------------------------------------------


def _decider(conn: Connection, connection: ConnectionRow, kind: str, email: str) -> int:
    """The Pay user's id, if they are an active member of the team with the permission."""
    email = (email or "").strip().lower()
    if not email:
        raise ResolutionError(
            "Say who decides: the email of a Pay user of the team (--by / decided_by)."
        )
    user = conn.execute(sa.select(pay_user.c.id).where(pay_user.c.email == email)).first()
    team_name = conn.execute(sa.select(team.c.name).where(team.c.id == connection.team_id)).scalar()
    member = None
    if user is not None:
        member = conn.execute(
            sa.select(team_role.c.id, team_role.c.key)
            .join(team_member, team_member.c.role_id == team_role.c.id)
            .where(
                team_member.c.team_id == connection.team_id,
                team_member.c.user_id == user.id,
                team_member.c.status == "active",
            )
        ).first()
    if member is None:
        raise ResolutionError(
            f"Pay user {email!r} is not an active member of team {team_name!r} (connection "
            f"{connection.key!r}): decide as a member of that team."
        )
    permission = PERMISSIONS[kind]
    allowed = conn.execute(
        sa.select(role_permission.c.permission).where(
            role_permission.c.role_id == member.id, role_permission.c.permission == permission
        )
    ).first()
    if allowed is None:
        raise ResolutionError(
            f"Pay user {email!r} has the role {member.key!r} on team {team_name!r}, which lacks "
            f"the {permission} permission a {KIND_LABELS[kind]} needs: ask someone who has it "
            "(an owner) to decide, or grant it to the role."
        )
    return user.id


# -- one resolution -----------------------------------------------------------------------------


def _resolve_one(
    conn: Connection,
    connection: ConnectionRow,
    row: Any,
    choice: Choice,
    user_id: int,
    now: datetime,
) -> Resolved:
    decision = choice.choice.strip().lower().replace("-", "_")
    allowed = CHOICES[row.kind]
    label = f"{KIND_LABELS[row.kind]} {short(row.id)}"
    if decision not in allowed:
        raise ResolutionError(
            f"{decision!r} does not resolve a {KIND_LABELS[row.kind]} ({label}): choose one of "
            f"{', '.join(allowed)}."
        )
    if row.status == "superseded":
        raise ResolutionError(
            f"{label} is superseded: the disagreement no longer exists (the records changed "
            "since). List the open conflicts with `assignar-pipeline conflicts list`."
        )
    if row.status == "resolved":
        existing = conn.execute(
            sa.select(sync_resolution).where(sync_resolution.c.id == row.resolution_id)
        ).one()
        if _same(existing, decision, choice):
            return Resolved(
                row.id, connection.key, row.kind, decision, existing.id, True, "already resolved"
            )
        who = conn.execute(
            sa.select(pay_user.c.email).where(pay_user.c.id == existing.decided_by_user_id)
        ).scalar()
        raise ResolutionError(
            f"{label} was already resolved as {existing.decision!r} by {who} on "
            f"{existing.decided_at:%Y-%m-%d %H:%M} UTC; a resolution is not changed afterwards "
            "(correct the result in Pay itself if it was wrong)."
        )
    apply = {
        "merge": _merge,
        "create_new": _create_project,
        "map": _map,
        "create_employee": _create_employee,
        "ignore": _ignore,
        "use_assignar_rate": _rate,
        "set_rate": _rate,
        "keep_pay_rate": _rate,
        "accept_adjustment": _adjustment,
        "reject_adjustment": _adjustment,
    }[decision]
    resolution_id, effect = apply(conn, connection, row, choice, decision, user_id, now)
    conn.execute(
        sync_conflict.update()
        .where(sync_conflict.c.id == row.id)
        .values(status="resolved", resolution_id=resolution_id)
    )
    if row.kind in (WORKER_MISMATCH, DUPLICATE_PROJECT):
        release_holds(conn, connection.id, row.subject_entity, [row.subject_external_id])
    return Resolved(row.id, connection.key, row.kind, decision, resolution_id, False, effect)


def _same(existing: Any, decision: str, choice: Choice) -> bool:
    """Is `choice` the decision already recorded? Only the parameters the decision uses count,
    and one not given counts as the same."""
    if existing.decision != decision:
        return False
    params = existing.params or {}
    checks: list[tuple[Any, Any]] = []
    if decision in ("merge", "map"):
        checks.append((choice.target, existing.target_pay_id))
    if decision == "create_new" and choice.code is not None:
        checks.append((choice.code.strip() or None, params.get("code")))
    if decision == "create_employee" and choice.employee_number is not None:
        checks.append((choice.employee_number.strip() or None, params.get("employee_number")))
    if decision == "set_rate" and choice.rate is not None:
        checks.append((_valid_rate(choice.rate), existing.rate))
    if decision in ("use_assignar_rate", "set_rate"):
        if choice.scope is not None:
            checks.append((_scope(choice, decision), existing.apply_scope))
        if existing.apply_scope == "going_forward":
            checks.append((choice.effective_from, existing.effective_from))
    return all(given is None or given == stored for given, stored in checks)


def _record(
    conn: Connection,
    connection: ConnectionRow,
    row: Any,
    decision: str,
    user_id: int,
    now: datetime,
    choice: Choice,
    **values: Any,
) -> int:
    params = values.pop("params", {})
    return conn.execute(
        sync_resolution.insert()
        .values(
            connection_id=connection.id,
            conflict_id=row.id,
            kind=row.kind,
            decision=decision,
            decided_by_user_id=user_id,
            decided_at=now,
            note=choice.note,
            params=params,
            **values,
        )
        .returning(sync_resolution.c.id)
    ).scalar_one()


def _team_row(conn: Connection, table: sa.Table, pay_id: int | None, connection, what: str, row):
    """The Pay row `pay_id` of `table`, which must belong to the connection's team."""
    if pay_id is None:
        raise ResolutionError(
            f"Say which Pay {what} (--target ID / target); the candidates are: {_candidates(row)}."
        )
    found = conn.execute(sa.select(table).where(table.c.id == pay_id)).first()
    if found is None:
        raise ResolutionError(
            f"Pay {what} #{pay_id} does not exist; the candidates are: {_candidates(row)}."
        )
    if found.team_id != connection.team_id:
        raise ResolutionError(
            f"Pay {what} #{pay_id} belongs to another Pay team (team {found.team_id}), not to "
            f"connection {connection.key!r}'s team {connection.team_id}: choose one of its "
            f"{what}s; the candidates are: {_candidates(row)}."
        )
    return found


def _candidates(row: Any) -> str:
    listed = [f"#{c['pay_id']} {c.get('name')!r}" for c in row.candidates or []]
    return ", ".join(listed) if listed else "none (create a new one instead)"


def _merge(conn, connection, row, choice, decision, user_id, now):
    target = _team_row(conn, project, choice.target, connection, "project", row)
    rid = _record(conn, connection, row, decision, user_id, now, choice, target_pay_id=target.id)
    write_link(
        conn, connection.id, "project", row.subject_external_id, target.id, "resolution_merge", rid
    )
    return rid, f"Assignar project {row.subject_external_id} now loads into Pay project " + (
        f"#{target.id} {target.name!r}"
    )


def _staged(conn: Connection, table: sa.Table, connection, row) -> Any:
    staged = conn.execute(
        sa.select(table).where(
            table.c.connection_id == connection.id, table.c.assignar_id == row.subject_external_id
        )
    ).first()
    if staged is None:
        raise ResolutionError(
            f"Assignar {row.subject_entity} {row.subject_external_id} is no longer staged for "
            f"connection {connection.key!r}: sync it again, then resolve."
        )
    return staged


def _create_project(conn, connection, row, choice, decision, user_id, now):
    staged = _staged(conn, staging_project, connection, row)
    code = staged.code if choice.code is None else (choice.code.strip() or None)
    if code is not None:
        taken = conn.execute(
            sa.select(project.c.id, project.c.name, project.c.code).where(
                project.c.team_id == connection.team_id, project.c.code.is_not(None)
            )
        ).all()
        clash = next((p for p in taken if norm_code(p.code) == norm_code(code)), None)
        if clash is not None:
            raise ResolutionError(
                f"Pay project #{clash.id} {clash.name!r} already has the code {clash.code!r}: "
                "give the new project another code (--code NEW), or none (--code '')."
            )
    pay_id = conn.execute(
        project.insert()
        .values(
            team_id=connection.team_id,
            code=code,
            name=staged.name,
            status="active" if staged.active else "completed",
            client_id=PayClients(conn, connection).ensure(staged),
            origin="resolution",
        )
        .returning(project.c.id)
    ).scalar_one()
    rid = _record(
        conn,
        connection,
        row,
        decision,
        user_id,
        now,
        choice,
        target_pay_id=pay_id,
        params={"code": code},
    )
    write_link(
        conn, connection.id, "project", row.subject_external_id, pay_id, "resolution_create", rid
    )
    return rid, f"created Pay project #{pay_id} {staged.name!r} (code {code or 'none'})"


def _map(conn, connection, row, choice, decision, user_id, now):
    target = _team_row(conn, employee, choice.target, connection, "employee", row)
    rid = _record(conn, connection, row, decision, user_id, now, choice, target_pay_id=target.id)
    write_link(
        conn, connection.id, "worker", row.subject_external_id, target.id, "resolution_map", rid
    )
    return rid, (
        f"Assignar worker {row.subject_external_id} is Pay employee #{target.id} "
        f"{target.first_name} {target.last_name}"
    )


def _create_employee(conn, connection, row, choice, decision, user_id, now):
    staged = _staged(conn, staging_worker, connection, row)
    number = (
        (staged.employee_id or None)
        if choice.employee_number is None
        else (choice.employee_number.strip() or None)
    )
    if number is not None:
        taken = conn.execute(
            sa.select(employee.c.id, employee.c.first_name, employee.c.last_name).where(
                employee.c.team_id == connection.team_id,
                employee.c.employee_number == number,
            )
        ).first()
        if taken is not None:
            raise ResolutionError(
                f"Pay employee #{taken.id} {taken.first_name} {taken.last_name} already has the "
                f"employee number {number!r}: give another (--employee-number NEW) or none "
                "(--employee-number ''), or map the worker to that employee instead."
            )
    pay_id = conn.execute(
        employee.insert()
        .values(
            team_id=connection.team_id,
            employee_number=number,
            first_name=staged.first_name,
            last_name=staged.last_name,
            email=staged.email,
            dob=staged.dob,
            status="active" if staged.active else "inactive",
            origin="resolution",
        )
        .returning(employee.c.id)
    ).scalar_one()
    rid = _record(
        conn,
        connection,
        row,
        decision,
        user_id,
        now,
        choice,
        target_pay_id=pay_id,
        params={"employee_number": number},
    )
    write_link(
        conn, connection.id, "worker", row.subject_external_id, pay_id, "resolution_create", rid
    )
    return rid, (
        f"created Pay employee #{pay_id} {staged.first_name} {staged.last_name} "
        f"(employee number {number or 'none'})"
    )


def _ignore(conn, connection, row, choice, decision, user_id, now):
    rid = _record(conn, connection, row, decision, user_id, now, choice)
    write_link(conn, connection.id, "worker", row.subject_external_id, None, "ignored", rid)
    return rid, (
        f"Assignar worker {row.subject_external_id} is not paid through Pay; their timesheets "
        "are counted as ignored"
    )


def _scope(choice: Choice, decision: str) -> str | None:
    if decision == "keep_pay_rate":
        return None
    scope = (choice.scope or "going_forward").strip().lower().replace("-", "_")
    if scope not in SCOPES:
        raise ResolutionError(
            f"Unknown scope {choice.scope!r}: use going_forward (a new Pay rate from a date) or "
            "occurrence (only the timesheets of this disagreement, Pay's rates untouched)."
        )
    return scope


def _rate(conn, connection, row, choice, decision, user_id, now):
    details = row.details
    if decision == "keep_pay_rate":
        rid = _record(conn, connection, row, decision, user_id, now, choice)
        pay = show_rate(Decimal(details["pay"]["rate"]))
        return rid, f"Pay's rate {pay} stands for this disagreement"
    if decision == "use_assignar_rate":
        rate = Decimal(details["assignar"]["rate"])
    else:
        rate = _valid_rate(choice.rate)
    scope = _scope(choice, decision)
    if scope == "occurrence":
        rid = _record(
            conn, connection, row, decision, user_id, now, choice, rate=rate, apply_scope=scope
        )
        return rid, (
            f"the timesheets of this disagreement are paid {show_rate(rate)} (Pay's rates "
            "unchanged)"
        )
    employee_id = details["employee"]["id"]
    start = choice.effective_from or _earliest_held(conn, row.id) or now.date()
    rates = PayRates(conn, connection.team_id, ORDINARY)
    key = scope_key(employee_id, None)
    same_scope = [r for r in rates.rows if r.employee_id == employee_id and r.project_id is None]
    if any(r.effective_from == start for r in same_scope):
        raise ResolutionError(
            f"Pay already has a rate for this employee starting {start}: choose another "
            "--effective-from, or resolve with --scope occurrence."
        )
    covering = next((r for r in same_scope if r.covers(start)), None)
    later = [r.effective_from for r in same_scope if r.effective_from > start]
    rid = _record(
        conn,
        connection,
        row,
        decision,
        user_id,
        now,
        choice,
        rate=rate,
        apply_scope=scope,
        effective_from=start,
    )
    if covering is not None:
        conn.execute(
            pay_rate.update().where(pay_rate.c.id == covering.id).values(effective_to=start)
        )
    currency = conn.execute(sa.select(team.c.currency).where(team.c.id == connection.team_id))
    conn.execute(
        pay_rate.insert().values(
            team_id=connection.team_id,
            pay_code_id=rates.pay_code_id,
            employee_id=employee_id,
            project_id=None,
            scope_key=key,
            rate=rate,
            currency=currency.scalar_one(),
            effective_from=start,
            effective_to=min(later) if later else None,
            source="assignar_resolution"
            if decision == "use_assignar_rate"
            else "custom_resolution",
            source_ref=str(rid),
        )
    )
    return rid, (
        f"new Pay rate {show_rate(rate)} for {details['employee']['name']} ({ORDINARY}) from "
        f"{start}" + (f"; the previous rate #{covering.id} ends then" if covering else "")
    )


def _valid_rate(value: Any) -> Decimal:
    try:
        rate = Decimal(str(value)) if value is not None else None
    except InvalidOperation:
        rate = None
    if rate is None or not rate.is_finite() or rate <= 0:
        raise ResolutionError(f"set_rate needs a positive rate (--rate 45.50), not {value!r}.")
    if rate != rate.quantize(RATE_UNIT):
        raise ResolutionError(f"A rate has at most 4 decimal places: {rate}.")
    return rate


def _earliest_held(conn: Connection, conflict: str) -> date | None:
    dates = [r.work_date for r in held_by(conn, [conflict]) if r.work_date is not None]
    return min(dates) if dates else None


def _adjustment(conn, connection, row, choice, decision, user_id, now):
    details = row.details
    pay_id = details["timesheet"]["pay_id"]
    current = conn.execute(sa.select(timesheet).where(timesheet.c.id == pay_id)).one()
    paid = current.payable_minutes + effective_minutes(conn, [pay_id]).get(pay_id, 0)
    delta = int(details["new_minutes"]) - paid
    rate = conn.execute(
        sa.select(timesheet_line.c.rate)
        .where(timesheet_line.c.timesheet_id == pay_id, timesheet_line.c.rate.is_not(None))
        .order_by(timesheet_line.c.line_no)
    ).scalar()
    delta_amount = None if rate is None else (Decimal(delta) * rate / 60).quantize(CENT)
    rid = _record(conn, connection, row, decision, user_id, now, choice)
    accepted = decision == "accept_adjustment"
    conn.execute(
        timesheet_adjustment.insert().values(
            timesheet_id=pay_id,
            conflict_id=row.id,
            delta_minutes=delta,
            delta_amount=delta_amount,
            reason={"edited": "edited_after_lock", "deleted": "deleted_after_lock"}.get(
                details["change"], "unapproved_after_lock"
            ),
            status="approved" if accepted else "rejected",
            decided_by_user_id=user_id,
            decided_at=now,
        )
    )
    verb = "adjusts" if accepted else "would have adjusted (rejected; Pay unchanged)"
    return rid, f"a {delta:+d} min adjustment {verb} Pay timesheet #{pay_id}"


# -- loading what was held ----------------------------------------------------------------------


def _reload(
    conn: Connection,
    connections: dict[int, ConnectionRow],
    before: Sequence[Any],
    result: ResolveResult,
    now: datetime,
    run_id: str,
) -> None:
    """Re-load the dates of the held timesheets and orders; report which records came free."""
    dated = [r for r in before if r.entity in ("timesheet", "order") and r.work_date is not None]
    by_connection: dict[int, set[date]] = {}
    for r in dated:
        by_connection.setdefault(r.connection_id, set()).add(r.work_date)
    for connection_id, days in sorted(by_connection.items()):
        connection = connections[connection_id]
        totals = {"timesheets": LoadCounts(), "orders": LoadCounts()}
        for window in _ranges(sorted(days)):
            totals["timesheets"].merge(load_timesheets(conn, connection, now, window))
            totals["orders"].merge(load_orders(conn, connection, now, window))
        for entity, counts in totals.items():
            log_load(
                conn,
                connection_id,
                run_id,
                entity,
                counts,
                window=(min(days), max(days) + timedelta(days=1)),
                started_at=now,
                finished_at=datetime.now(UTC),
            )
        mine = [r for r in dated if r.connection_id == connection_id]
        still = {
            (r.entity, r.assignar_id)
            for r in conn.execute(
                sa.select(sync_hold.c.entity, sync_hold.c.assignar_id).where(
                    sync_hold.c.connection_id == connection_id,
                    sync_hold.c.entity.in_(["timesheet", "order"]),
                    sync_hold.c.assignar_id.in_([r.assignar_id for r in mine]),
                )
            )
        }
        freed = {(r.entity, r.assignar_id): r.work_date for r in mine}
        freed = {k: d for k, d in freed.items() if k not in still}
        if freed:
            result.unblocked[connection.key] = sorted(set(freed.values()))
            result.released[connection.key] = len(freed)


def _ranges(days: list[date]) -> list[tuple[date, date]]:
    """Consecutive dates grouped into [start, end) windows."""
    windows: list[tuple[date, date]] = []
    for day in days:
        if windows and windows[-1][1] == day:
            windows[-1] = (windows[-1][0], day + timedelta(days=1))
        else:
            windows.append((day, day + timedelta(days=1)))
    return windows

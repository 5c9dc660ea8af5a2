"""Reading conflicts for people: the list, one conflict in full, open counts per connection."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from assignar_pipeline.pay.tables import (
    connection as connection_table,
)
from assignar_pipeline.pay.tables import (
    pay_user,
    role_permission,
    sync_conflict,
    sync_conflict_seen,
    sync_hold,
    sync_hold_conflict,
    sync_resolution,
    team_member,
)
from assignar_pipeline.reconcile.conflicts import (
    CHOICES,
    KIND_LABELS,
    PERMISSIONS,
    ResolutionError,
    find_conflict,
    short,
)

STATUSES = ("open", "resolved", "superseded", "all")


@dataclass
class ConflictView:
    id: str
    connection_key: str
    kind: str
    status: str
    summary: str
    subject: str
    first_seen_at: datetime
    last_seen_at: datetime | None
    held: dict[str, int] = field(default_factory=dict)  # entity → records waiting on it
    held_dates: tuple[date, date] | None = None  # first and last work date waiting
    candidates: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    resolution: dict[str, Any] | None = None
    example: str | None = None  # an open conflict: a resolve command that works as written

    @property
    def label(self) -> str:
        return KIND_LABELS[self.kind]

    @property
    def choices(self) -> tuple[str, ...]:
        return CHOICES[self.kind]


def list_conflicts(
    conn: Connection,
    *,
    connection_key: str | None = None,
    kind: str | None = None,
    status: str = "open",
) -> list[ConflictView]:
    """Conflicts, newest kinds first within a connection, with what each holds."""
    if status not in STATUSES:
        raise ResolutionError(f"Unknown status {status!r}: use one of {', '.join(STATUSES)}.")
    if kind is not None and kind not in KIND_LABELS:
        raise ResolutionError(f"Unknown kind {kind!r}: use one of {', '.join(KIND_LABELS)}.")
    query = _base()
    if connection_key is not None:
        known = conn.execute(
            sa.select(connection_table.c.id).where(connection_table.c.key == connection_key)
        ).scalar()
        if known is None:
            raise ResolutionError(
                f"No connection has the key {connection_key!r}: see `assignar-pipeline "
                "connections`."
            )
        query = query.where(connection_table.c.key == connection_key)
    if kind is not None:
        query = query.where(sync_conflict.c.kind == kind)
    if status != "all":
        query = query.where(sync_conflict.c.status == status)
    rows = conn.execute(
        query.order_by(
            connection_table.c.key, sync_conflict.c.kind, sync_conflict.c.subject_external_id
        )
    ).all()
    views = [_view(r) for r in rows]
    _add_holds(conn, views)
    return views


def show_conflict(conn: Connection, ref: str) -> ConflictView:
    """One conflict in full: both sides, candidates, what it holds, and its resolution."""
    row = find_conflict(conn, ref)
    view = _view(conn.execute(_base().where(sync_conflict.c.id == row.id)).one())
    _add_holds(conn, [view])
    resolution = conn.execute(
        sa.select(sync_resolution, pay_user.c.email)
        .join(pay_user, pay_user.c.id == sync_resolution.c.decided_by_user_id)
        .where(sync_resolution.c.conflict_id == row.id)
    ).first()
    if resolution is not None:
        view.resolution = {
            "id": resolution.id,
            "decision": resolution.decision,
            "decided_by": resolution.email,
            "decided_at": resolution.decided_at,
            "target_pay_id": resolution.target_pay_id,
            "rate": resolution.rate,
            "apply_scope": resolution.apply_scope,
            "effective_from": resolution.effective_from,
            "params": resolution.params,
            "note": resolution.note,
        }
    if view.status == "open":
        view.example = _example(conn, row, view)
    return view


def _example(conn: Connection, row: Any, view: ConflictView) -> str:
    """`conflicts resolve` with the first choice that needs no more than the view knows: merge
    or map into the best candidate (else create one), and a team member allowed to decide
    (the connection's owner first)."""
    needs_target = {"merge", "map"}
    choice = next(
        c for c in view.choices if c != "set_rate" and (c not in needs_target or view.candidates)
    )
    target = f" --target {view.candidates[0]['pay_id']}" if choice in needs_target else ""
    connection = conn.execute(
        sa.select(connection_table.c.team_id, connection_table.c.connected_by_user_id).where(
            connection_table.c.id == row.connection_id
        )
    ).one()
    decider = conn.execute(
        sa.select(pay_user.c.email)
        .join(team_member, team_member.c.user_id == pay_user.c.id)
        .join(role_permission, role_permission.c.role_id == team_member.c.role_id)
        .where(
            team_member.c.team_id == connection.team_id,
            team_member.c.status == "active",
            role_permission.c.permission == PERMISSIONS[view.kind],
        )
        .order_by(pay_user.c.id != connection.connected_by_user_id, pay_user.c.id)
        .limit(1)
    ).scalar()
    by = shlex.quote(decider) if decider else "EMAIL"  # nobody may decide yet: a placeholder
    return f"assignar-pipeline conflicts resolve {short(view.id)} {choice}{target} --by {by}"


def open_conflict_counts(conn: Connection, connection_ids: Sequence[int]) -> dict[int, dict]:
    """Connection id → {kind: number of open conflicts} (connections without any are absent)."""
    if not connection_ids:
        return {}
    rows = conn.execute(
        sa.select(sync_conflict.c.connection_id, sync_conflict.c.kind, sa.func.count())
        .where(
            sync_conflict.c.connection_id.in_(list(connection_ids)),
            sync_conflict.c.status == "open",
        )
        .group_by(sync_conflict.c.connection_id, sync_conflict.c.kind)
    ).all()
    counts: dict[int, dict[str, int]] = {}
    for connection_id, kind, n in rows:
        counts.setdefault(connection_id, {})[kind] = n
    return counts


def _base() -> sa.Select:
    return (
        sa.select(
            sync_conflict,
            connection_table.c.key.label("connection_key"),
            sync_conflict_seen.c.last_seen_at,
        )
        .join(connection_table, connection_table.c.id == sync_conflict.c.connection_id)
        .outerjoin(sync_conflict_seen, sync_conflict_seen.c.conflict_id == sync_conflict.c.id)
    )


def _view(r: Any) -> ConflictView:
    return ConflictView(
        id=r.id,
        connection_key=r.connection_key,
        kind=r.kind,
        status=r.status,
        summary=r.summary,
        subject=f"{r.subject_entity} {r.subject_external_id}",
        first_seen_at=r.first_seen_at,
        last_seen_at=r.last_seen_at,
        candidates=list(r.candidates or []),
        details=dict(r.details or {}),
    )


def _add_holds(conn: Connection, views: list[ConflictView]) -> None:
    if not views:
        return
    by_id = {v.id: v for v in views}
    rows = conn.execute(
        sa.select(
            sync_hold_conflict.c.conflict_id,
            sync_hold.c.entity,
            sa.func.count(),
            sa.func.min(sync_hold.c.work_date),
            sa.func.max(sync_hold.c.work_date),
        )
        .join(
            sync_hold,
            sa.and_(
                sync_hold.c.connection_id == sync_hold_conflict.c.connection_id,
                sync_hold.c.entity == sync_hold_conflict.c.entity,
                sync_hold.c.assignar_id == sync_hold_conflict.c.assignar_id,
            ),
        )
        .where(sync_hold_conflict.c.conflict_id.in_(list(by_id)))
        .group_by(sync_hold_conflict.c.conflict_id, sync_hold.c.entity)
    ).all()
    for conflict, entity, n, first, last in rows:
        view = by_id[conflict]
        view.held[entity] = n
        if first is not None:
            lo, hi = view.held_dates or (first, last)
            view.held_dates = (min(lo, first), max(hi, last))

"""Conflicts and holds: what the loaders could not decide, kept as rows a person resolves.

A conflict's id is a UUIDv5 of (connection, kind, fingerprint), so meeting the same disagreement
again finds the same row; its candidates and details refresh in place. A row is written only when
its content changes (the rerun-leaves-Pay-equal rule); when it was last met is bookkeeping, in
`sync_conflict_seen`. Holds say which records wait, and on which conflicts.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from assignar_pipeline.pay.tables import (
    sync_conflict,
    sync_conflict_seen,
    sync_hold,
    sync_hold_conflict,
    sync_resolution,
)

DUPLICATE_PROJECT = "duplicate_project"
WORKER_MISMATCH = "worker_mismatch"
RATE_DIFFERENCE = "rate_difference"
LOCKED_CHANGED = "locked_changed"

#: How each kind is called in the product, and the choices that resolve it.
KIND_LABELS = {
    DUPLICATE_PROJECT: "Duplicate Project",
    WORKER_MISMATCH: "Worker Mismatch",
    RATE_DIFFERENCE: "Rate Difference",
    LOCKED_CHANGED: "Timesheet Adjustment",
}
#: The kinds as a command line names them: the product's names, e.g. `timesheet_adjustment`.
KIND_OPTIONS = {label.lower().replace(" ", "_"): kind for kind, label in KIND_LABELS.items()}


def kind_named(text: str) -> str | None:
    """The kind a person means: its product name in any case, with spaces, dashes or
    underscores ("Timesheet Adjustment", timesheet-adjustment), or the stored key."""
    name = text.strip().lower().replace(" ", "_").replace("-", "_")
    return KIND_OPTIONS.get(name) or (name if name in KIND_LABELS else None)


CHOICES = {
    DUPLICATE_PROJECT: ("merge", "create_new"),
    WORKER_MISMATCH: ("map", "create_employee", "ignore"),
    RATE_DIFFERENCE: ("use_assignar_rate", "keep_pay_rate", "set_rate"),
    LOCKED_CHANGED: ("accept_adjustment", "reject_adjustment"),
}

#: The permission a Pay role needs to decide each kind of conflict.
PERMISSIONS = {
    DUPLICATE_PROJECT: "integrations.manage",
    WORKER_MISMATCH: "integrations.manage",
    RATE_DIFFERENCE: "rates.edit",
    LOCKED_CHANGED: "payroll.manage",
}
#: A conflict can be named by this many leading characters of its id, or more.
MIN_PREFIX = 6


class ResolutionError(ValueError):
    """The resolution cannot be made as given; the message says what to fix."""


_NAMESPACE = uuid.UUID("6f1c2a44-5a0b-4d4e-9f3e-8b0c1d2e3f40")


def conflict_id(connection_id: int, kind: str, fingerprint: str) -> str:
    """The stable id of a disagreement: the same inputs always give the same id."""
    return str(uuid.uuid5(_NAMESPACE, f"{connection_id}|{kind}|{fingerprint}"))


def short(conflict: str) -> str:
    """The first 8 characters, which is how people quote a conflict (`conflicts show 1a2b3c4d`)."""
    return conflict[:8]


@dataclass(frozen=True)
class Hold:
    """Why one record waits, the partition it belongs to, and the conflicts it waits on."""

    reason: str
    work_date: date | None = None
    conflicts: tuple[str, ...] = ()


class ConflictBook:
    """One connection's conflicts during one load pass: observe, look up, supersede.

    Reads everything once; `observe` writes only what changed. Call `finish()` at the end of the
    pass to record the sightings.
    """

    def __init__(self, conn: Connection, connection_id: int, now: datetime) -> None:
        self.conn, self.connection_id, self.now = conn, connection_id, now
        rows = conn.execute(
            sa.select(sync_conflict).where(sync_conflict.c.connection_id == connection_id)
        ).all()
        self.rows: dict[str, Any] = {r.id: _Row(r._asdict()) for r in rows}
        self.resolutions: dict[str, Any] = {
            r.conflict_id: r
            for r in conn.execute(
                sa.select(sync_resolution).where(sync_resolution.c.connection_id == connection_id)
            )
        }
        self.seen: set[str] = set()

    def get(self, kind: str, fingerprint: str) -> Any:
        return self.rows.get(conflict_id(self.connection_id, kind, fingerprint))

    def resolution(self, conflict: str) -> Any:
        """The resolution of a resolved conflict, else None."""
        row = self.rows.get(conflict)
        return self.resolutions.get(conflict) if row and row.status == "resolved" else None

    def open_by_subject(self, kind: str) -> dict[int, str]:
        """Assignar id of the subject → id of its open conflict of this kind."""
        return {
            r.subject_external_id: r.id
            for r in self.rows.values()
            if r.kind == kind and r.status == "open"
        }

    def observe(
        self,
        kind: str,
        fingerprint: str,
        *,
        subject_entity: str,
        subject_external_id: int,
        summary: str,
        details: Mapping[str, Any],
        candidates: list[dict[str, Any]] | None = None,
    ) -> Any:
        """Record that this disagreement exists now; return its row (open, or as resolved)."""
        cid = conflict_id(self.connection_id, kind, fingerprint)
        self.seen.add(cid)
        values = {
            "summary": summary[:400],
            "details": dict(details),
            "candidates": list(candidates or []),
        }
        current = self.rows.get(cid)
        if current is None:
            row = {
                "id": cid,
                "connection_id": self.connection_id,
                "kind": kind,
                "fingerprint": fingerprint,
                "subject_entity": subject_entity,
                "subject_external_id": subject_external_id,
                "status": "open",
                "first_seen_at": self.now,
                "resolution_id": None,
                **values,
            }
            self.conn.execute(sync_conflict.insert().values(row))
        else:
            changed = {k: v for k, v in values.items() if getattr(current, k) != v}
            if current.status == "superseded":
                changed["status"] = "open"  # the disagreement is back: same conflict, reopened
            if current.status == "resolved":
                changed = {}  # a decided conflict keeps what the person saw when deciding
            if changed:
                self.conn.execute(
                    sync_conflict.update().where(sync_conflict.c.id == cid).values(changed)
                )
            row = {**current._asdict(), **changed}
        self.rows[cid] = _Row(row)
        return self.rows[cid]

    def supersede_unseen(self, kinds: Iterable[str]) -> int:
        """Open conflicts of these kinds that this pass did not meet no longer exist."""
        stale = [
            r.id
            for r in self.rows.values()
            if r.kind in set(kinds) and r.status == "open" and r.id not in self.seen
        ]
        return self._supersede(stale)

    def supersede_unheld(self, kinds: Iterable[str]) -> int:
        """Open conflicts of these kinds that hold nothing any more (their records moved on)."""
        wanted = [r.id for r in self.rows.values() if r.kind in set(kinds) and r.status == "open"]
        if not wanted:
            return 0
        holding = set(
            self.conn.execute(
                sa.select(sync_hold_conflict.c.conflict_id)
                .where(sync_hold_conflict.c.conflict_id.in_(wanted))
                .distinct()
            ).scalars()
        )
        return self._supersede([c for c in wanted if c not in holding])

    def _supersede(self, ids: list[str]) -> int:
        if ids:
            self.conn.execute(
                sync_conflict.update()
                .where(sync_conflict.c.id.in_(ids))
                .values(status="superseded")
            )
            for cid in ids:
                self.rows[cid] = _Row({**self.rows[cid]._asdict(), "status": "superseded"})
        return len(ids)

    def finish(self) -> None:
        """Record when each conflict met in this pass was last seen (bookkeeping only)."""
        if not self.seen:
            return
        ids = sorted(self.seen)
        known = set(
            self.conn.execute(
                sa.select(sync_conflict_seen.c.conflict_id).where(
                    sync_conflict_seen.c.conflict_id.in_(ids)
                )
            ).scalars()
        )
        if known:
            self.conn.execute(
                sync_conflict_seen.update()
                .where(sync_conflict_seen.c.conflict_id.in_(known))
                .values(last_seen_at=self.now)
            )
        fresh = [{"conflict_id": c, "last_seen_at": self.now} for c in ids if c not in known]
        if fresh:
            self.conn.execute(sync_conflict_seen.insert(), fresh)
        self.seen.clear()


class _Row:
    """A conflict row as a plain object (attribute access like SQLAlchemy's Row)."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_values", dict(values))

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def _asdict(self) -> dict[str, Any]:
        return dict(self._values)


# -- holds --------------------------------------------------------------------------------------


def replace_holds(
    conn: Connection,
    connection_id: int,
    entity: str,
    holds: Mapping[int, Hold],
    now: datetime,
    *,
    window: tuple[date, date] | None = None,
) -> None:
    """Make sync_hold (and the conflicts each hold waits on) exactly `holds` for this entity and
    window. held_since survives while a record stays held; nothing is written if nothing changed."""
    where = [sync_hold.c.connection_id == connection_id, sync_hold.c.entity == entity]
    if window is not None:
        where += [sync_hold.c.work_date >= window[0], sync_hold.c.work_date < window[1]]
    current = {row.assignar_id: row for row in conn.execute(sa.select(sync_hold).where(*where))}
    links: dict[int, set[str]] = {}
    if current:
        for row in conn.execute(
            sa.select(sync_hold_conflict.c.assignar_id, sync_hold_conflict.c.conflict_id).where(
                sync_hold_conflict.c.connection_id == connection_id,
                sync_hold_conflict.c.entity == entity,
                sync_hold_conflict.c.assignar_id.in_(list(current)),
            )
        ):
            links.setdefault(row.assignar_id, set()).add(row.conflict_id)
    released = [i for i in current if i not in holds]
    for start in range(0, len(released), 5_000):
        _drop_holds(conn, connection_id, entity, released[start : start + 5_000])
    fresh = [i for i in holds if i not in current]
    # A record held in another window before (its date changed upstream) moves here.
    for start in range(0, len(fresh), 5_000):
        _drop_holds(conn, connection_id, entity, fresh[start : start + 5_000])
    new_holds, new_links = [], []
    for assignar_id, hold in holds.items():
        old = current.get(assignar_id)
        if old is None:
            new_holds.append(
                {
                    "connection_id": connection_id,
                    "entity": entity,
                    "assignar_id": assignar_id,
                    "work_date": hold.work_date,
                    "reason": hold.reason[:300],
                    "held_since": now,
                }
            )
            have: set[str] = set()
        else:
            if old.reason != hold.reason[:300] or old.work_date != hold.work_date:
                conn.execute(
                    sync_hold.update()
                    .where(*where, sync_hold.c.assignar_id == assignar_id)
                    .values(reason=hold.reason[:300], work_date=hold.work_date)
                )
            have = links.get(assignar_id, set())
        wanted = set(hold.conflicts)
        gone = have - wanted
        if gone:
            conn.execute(
                sync_hold_conflict.delete().where(
                    sync_hold_conflict.c.connection_id == connection_id,
                    sync_hold_conflict.c.entity == entity,
                    sync_hold_conflict.c.assignar_id == assignar_id,
                    sync_hold_conflict.c.conflict_id.in_(gone),
                )
            )
        new_links += [
            {
                "connection_id": connection_id,
                "entity": entity,
                "assignar_id": assignar_id,
                "conflict_id": c,
            }
            for c in sorted(wanted - have)
        ]
    if new_holds:
        conn.execute(sync_hold.insert(), new_holds)
    if new_links:
        conn.execute(sync_hold_conflict.insert(), new_links)


def release_holds(conn: Connection, connection_id: int, entity: str, ids: list[int]) -> None:
    """Drop the holds of these records (their conflict was just resolved)."""
    _drop_holds(conn, connection_id, entity, ids)


def _drop_holds(conn: Connection, connection_id: int, entity: str, ids: list[int]) -> None:
    if not ids:
        return
    for table in (sync_hold_conflict, sync_hold):
        conn.execute(
            table.delete().where(
                table.c.connection_id == connection_id,
                table.c.entity == entity,
                table.c.assignar_id.in_(ids),
            )
        )


def held_by(conn: Connection, conflict_ids: list[str]) -> list[Any]:
    """(connection_id, entity, assignar_id, work_date, conflict_id) of what these conflicts hold."""
    if not conflict_ids:
        return []
    return conn.execute(
        sa.select(
            sync_hold.c.connection_id,
            sync_hold.c.entity,
            sync_hold.c.assignar_id,
            sync_hold.c.work_date,
            sync_hold_conflict.c.conflict_id,
        )
        .join(
            sync_hold_conflict,
            sa.and_(
                sync_hold_conflict.c.connection_id == sync_hold.c.connection_id,
                sync_hold_conflict.c.entity == sync_hold.c.entity,
                sync_hold_conflict.c.assignar_id == sync_hold.c.assignar_id,
            ),
        )
        .where(sync_hold_conflict.c.conflict_id.in_(conflict_ids))
        .order_by(sync_hold.c.entity, sync_hold.c.assignar_id)
    ).all()


def find_conflict(conn: Connection, ref: str) -> Any:
    """The conflict with this id, or the only one whose id starts with `ref`."""
    ref = (ref or "").strip().lower()
    if len(ref) < MIN_PREFIX:
        raise ResolutionError(
            f"Conflict id {ref!r} is too short: give at least {MIN_PREFIX} characters of the id "
            "shown by `assignar-pipeline conflicts list`."
        )
    rows = conn.execute(
        sa.select(sync_conflict).where(sync_conflict.c.id.startswith(ref, autoescape=True)).limit(5)
    ).all()
    if not rows:
        raise ResolutionError(
            f"No conflict has the id {ref!r}: list them with `assignar-pipeline conflicts list` "
            "(add --status all to include resolved ones)."
        )
    if len(rows) > 1:
        ids = ", ".join(r.id for r in rows)
        raise ResolutionError(f"{ref!r} matches several conflicts ({ids}): give more characters.")
    return rows[0]

"""Preview an import: what it would insert, update, void, hold and quarantine, writing nothing.

The preview runs the import itself (the extract, staging, matching, pricing and holding code that
a run materializing every asset for one connection and window runs) inside one database
transaction, reads what that import left behind while still inside it, and rolls it back. Being
the same code, it cannot drift from what an import does; being one transaction, nothing it wrote
is ever visible to anyone else, and a preview that fails midway leaves the database as it was.

The price of one transaction: the connection's write lock (PostgreSQL advisory lock; SQLite's
single write lock) is held until the preview ends, so an import or sync of that connection (on
SQLite, any writer) waits for it. The shared request-rate limit is the one thing a preview
commits: its requests reach Assignar, so they count against the account's limit like any other
(on SQLite, whose write lock the preview holds, the bucket is updated inside the preview's
transaction: the limit holds for the preview, and other processes' requests wait for it).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from assignar_pipeline.client import AssignarClient
from assignar_pipeline.connections import ConnectionRow, ConnectionsError, active_connections
from assignar_pipeline.entities import BY_NAME, ENTITIES, SNAPSHOTS
from assignar_pipeline.extract import ExtractResult, Scope, ScopeError, project_ids, worker_ids
from assignar_pipeline.extract import utcnow as _utcnow
from assignar_pipeline.markdown import markdown_table
from assignar_pipeline.pay.tables import (
    employee,
    quarantine,
    staging_timesheet,
    sync_conflict,
    sync_hold,
    sync_hold_conflict,
    timesheet,
    timesheet_line,
)
from assignar_pipeline.reconcile.conflicts import KIND_LABELS, short
from assignar_pipeline.reconcile.rates import refresh_rates
from assignar_pipeline.steps import LoadResult, extract_for, load_for, loadable

#: The entity of each sync_hold row, which names one record ("timesheet").
HOLD_ENTITIES = {e.singular: e.name for e in ENTITIES}
HOUR = Decimal(60)


class PreviewRefused(ValueError):
    """The preview cannot start or its filters name nothing; the message says what to fix."""


class PreviewFailed(RuntimeError):
    """The import being previewed failed (Assignar unreachable, credentials, …); nothing written."""


@dataclass(frozen=True)
class PreviewRequest:
    """One connection, a window of local work dates (both inclusive), and the import's filters."""

    connection: str
    start: date
    end: date
    projects: tuple[str, ...] = ()
    workers: tuple[str, ...] = ()
    orders: bool = False

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise PreviewRefused(
                f"The window ends ({self.end}) before it starts ({self.start}): give --to on or "
                "after --from."
            )

    @property
    def window(self) -> tuple[date, date]:
        """[start, day after end): how the pipeline passes windows around."""
        return self.start, self.end + timedelta(days=1)

    @property
    def scope(self) -> Scope:
        return Scope(projects=self.projects, workers=self.workers)


@dataclass
class EntityPreview:
    """What the import would do to one entity: in staging (from Assignar) and in Pay."""

    entity: str
    fetched: int = 0
    quarantined: int = 0
    staged_new: int = 0
    staged_changed: int = 0
    staged_unchanged: int = 0
    vanished: int = 0  # staged before, gone from Assignar: voided
    pay: dict[str, int] = field(default_factory=dict)  # LoadCounts outcomes (inserted, held, …)
    minutes: dict[str, int] = field(default_factory=dict)  # timesheets: minutes per outcome


@dataclass(frozen=True)
class ConflictPreview:
    id: str
    kind: str
    status: str  # new | open | superseded | resolved: what the import would leave it as
    summary: str
    held: dict[str, int]  # entity → records it would hold in this window
    candidates: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class QuarantinePreview:
    entity: str
    assignar_id: str | None
    work_date: date | None
    reason: str


@dataclass(frozen=True)
class EmployeePay:
    employee_id: int
    employee_number: str | None
    name: str
    timesheets: int
    minutes: int
    unpriced_minutes: int  # Pay has no rate for these yet: Pay's own rules will price them
    amount: Decimal


@dataclass
class PreviewReport:
    """Everything the preview learnt; `markdown()` is how people read it."""

    connection: str
    window: tuple[date, date]  # inclusive
    projects: tuple[str, ...]
    workers: tuple[str, ...]
    entities: list[EntityPreview]
    rates: dict[str, int]
    conflicts: list[ConflictPreview]
    held_without_conflict: dict[str, int]  # entity → held records waiting on no conflict
    quarantined: list[QuarantinePreview]
    employees: list[EmployeePay]

    def entity(self, name: str) -> EntityPreview:
        return next(e for e in self.entities if e.entity == name)

    @property
    def total_minutes(self) -> int:
        return sum(e.minutes for e in self.employees)

    @property
    def total_amount(self) -> Decimal:
        return sum((e.amount for e in self.employees), Decimal("0.00"))

    def summary_rows(self) -> list[dict[str, Any]]:
        return [
            {
                "entity": e.entity,
                "fetched": e.fetched,
                "quarantined": e.quarantined,
                "staged new": e.staged_new,
                "staged changed": e.staged_changed,
                "vanished": e.vanished,
                "Pay": BY_NAME[e.entity].pay_asset,
                **{outcome: e.pay.get(outcome, 0) for outcome in PAY_OUTCOMES},
            }
            for e in self.entities
        ]

    def conflict_rows(self) -> list[dict[str, Any]]:
        return [
            {
                "conflict": short(c.id),
                "kind": KIND_LABELS[c.kind],
                "status": c.status,
                "holds": ", ".join(f"{entity} {n}" for entity, n in sorted(c.held.items())),
                "summary": c.summary,
                "candidates": "; ".join(_candidate(x) for x in c.candidates) or "none",
            }
            for c in self.conflicts
        ]

    def quarantine_rows(self) -> list[dict[str, Any]]:
        return [
            {
                "entity": q.entity,
                "assignar id": q.assignar_id,
                "work date": q.work_date,
                "reason": q.reason,
            }
            for q in self.quarantined
        ]

    def employee_rows(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = [
            {
                "employee": e.name,
                "number": e.employee_number or "",
                "timesheets": e.timesheets,
                "minutes": e.minutes,
                "hours": hours(e.minutes),
                "unpriced minutes": e.unpriced_minutes,
                "pay": e.amount,
            }
            for e in self.employees
        ]
        if rows:
            rows.append(
                {
                    "employee": "**total**",
                    "number": "",
                    "timesheets": sum(e.timesheets for e in self.employees),
                    "minutes": self.total_minutes,
                    "hours": hours(self.total_minutes),
                    "unpriced minutes": sum(e.unpriced_minutes for e in self.employees),
                    "pay": self.total_amount,
                }
            )
        return rows

    def markdown(self) -> str:
        """The whole report: what would happen, per entity; conflicts; quarantine; pay."""
        filters = "".join(
            f"; {name} {', '.join(values)}"
            for name, values in (("projects", self.projects), ("workers", self.workers))
            if values
        )
        held = sum(self.held_without_conflict.values())
        rates = ", ".join(f"{k} {v}" for k, v in self.rates.items() if v) or "none"
        return "\n\n".join(
            [
                f"**Preview of an import for {self.connection}, {self.window[0]} to "
                f"{self.window[1]}{filters}.** Nothing was written.",
                "### What the import would do\n\n" + markdown_table(self.summary_rows()),
                f"Assignar pay rates (evidence for Rate Differences): {rates}.",
                "### Conflicts it would raise or hold records on\n\n"
                + markdown_table(self.conflict_rows())
                + (f"\n\nHeld without a conflict (not matched yet): {held}." if held else ""),
                "### Quarantined (fix in Assignar)\n\n" + markdown_table(self.quarantine_rows()),
                "### Pay by employee after the import\n\n" + markdown_table(self.employee_rows()),
            ]
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (the Launchpad job's output); money as decimal strings."""
        return {
            "connection": self.connection,
            "window": [d.isoformat() for d in self.window],
            "projects": list(self.projects),
            "workers": list(self.workers),
            "entities": self.summary_rows(),
            "rates": self.rates,
            "conflicts": [
                {**row, "id": c.id}
                for row, c in zip(self.conflict_rows(), self.conflicts, strict=True)
            ],
            "held_without_conflict": self.held_without_conflict,
            "quarantined": [
                {**row, "work date": row["work date"] and row["work date"].isoformat()}
                for row in self.quarantine_rows()
            ],
            "employees": [{**row, "pay": str(row["pay"])} for row in self.employee_rows()],
        }


PAY_OUTCOMES = ("inserted", "linked", "updated", "unchanged", "voided", "held", "ignored",
                "adjusted")  # fmt: skip


def hours(minutes: int) -> Decimal:
    return (Decimal(minutes) / HOUR).quantize(Decimal("0.01"))


def _candidate(candidate: dict[str, Any]) -> str:
    score = f" {candidate['score']}" if candidate.get("score") is not None else ""
    rule = f" ({candidate['rule']})" if candidate.get("rule") else ""
    return f"#{candidate.get('pay_id')} {candidate.get('name')!r}{score}{rule}"


# -- running the import inside one transaction ---------------------------------------------------


class _OneTransaction:
    """Stands in for the Pay engine: every `begin()` is a savepoint of one outer transaction and
    every `connect()` is that transaction's connection, so the import's own code (written for an
    engine and its short transactions) runs unchanged, and all it writes goes with the rollback."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    @property
    def dialect(self) -> sa.Dialect:
        return self._conn.dialect

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        with self._conn.begin_nested():
            yield self._conn

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        yield self._conn


OpenClient = Callable[[ConnectionRow, Any], AssignarClient]


def preview_import(
    engine: Engine,
    request: PreviewRequest,
    open_client: OpenClient,
    *,
    now: Callable[[], datetime] = _utcnow,
) -> PreviewReport:
    """Run the import `request` describes inside one transaction, report it, roll it back.

    `open_client(connection, engine)` makes the Assignar client; `engine` is where its shared
    rate limit lives. Raises `PreviewRefused` (bad input) or `PreviewFailed` (the import failed);
    the database is unchanged either way.
    """
    try:
        (connection,) = active_connections(engine, [request.connection])
    except ConnectionsError as exc:
        raise PreviewRefused(str(exc)) from None
    run_id = f"preview-{uuid.uuid4().hex}"
    entities = [
        e
        for e, wanted in (
            ("timesheets", connection.import_timesheets),
            ("orders", request.orders and connection.import_orders),
        )
        if wanted
    ]
    if request.orders and not connection.import_orders:
        raise PreviewRefused(
            f"Connection {connection.key!r} does not import orders: leave out --orders, or "
            "connect it again with --orders to import them."
        )
    if not entities:
        raise PreviewRefused(
            f"Connection {connection.key!r} imports no timesheets: add --orders to preview its "
            "orders (or change its import options with `connect`)."
        )
    with engine.connect() as conn:
        outer = conn.begin()
        try:
            db: Any = _OneTransaction(conn)
            # PostgreSQL: the bucket row is locked only for each reservation, on a connection of
            # its own. SQLite: the preview holds the one write lock, so the bucket must be
            # updated through the preview's own transaction or it would wait for itself.
            limiter_engine = engine if conn.dialect.name == "postgresql" else db
            report = _run(db, conn, connection, request, entities, run_id, now,
                          lambda c: open_client(c, limiter_engine))  # fmt: skip
        finally:
            outer.rollback()
    return report


def _run(
    db: Any,
    conn: Connection,
    connection: ConnectionRow,
    request: PreviewRequest,
    entities: Sequence[str],
    run_id: str,
    now: Callable[[], datetime],
    opener: Callable[[ConnectionRow], AssignarClient],
) -> PreviewReport:
    before = dict(
        conn.execute(
            sa.select(sync_conflict.c.id, sync_conflict.c.status).where(
                sync_conflict.c.connection_id == connection.id
            )
        ).all()
    )
    window = request.window
    # As an import of one window runs: the snapshots its matching needs, Assignar's rates
    # (evidence for Rate Differences), the dated entities, then Pay (the asset graph's order).
    extracts: dict[str, ExtractResult] = {}
    for entity in (*SNAPSHOTS, *entities):
        (extracts[entity],) = extract_for(
            db,
            [connection],
            opener,
            entity,
            run_id=run_id,
            window=None if entity in SNAPSHOTS else window,
            scope=request.scope,
        )
        _raise_if_failed(extracts[entity], entity)
    (rates,) = refresh_rates(db, [connection], opener, run_id=run_id)
    if rates.error:
        raise PreviewFailed(f"Fetching Assignar's pay rates failed: {rates.error}")
    loads: dict[str, LoadResult] = {}
    for entity in (*SNAPSHOTS, *entities):
        (complete,) = loadable(db, [connection], entity, run_id=run_id)
        (loads[entity],) = load_for(
            db,
            [complete],
            entity,
            run_id=run_id,
            window=None if entity in SNAPSHOTS else window,
            now=now,
        )
    conflicts, unexplained = _conflicts(conn, connection.id, window, before)
    return PreviewReport(
        connection=connection.key,
        window=(request.start, request.end),
        projects=request.projects,
        workers=request.workers,
        entities=[_entity(e, extracts[e], loads[e]) for e in (*SNAPSHOTS, *entities)],
        rates=dict(rates.counts),
        conflicts=conflicts,
        held_without_conflict=unexplained,
        quarantined=_quarantined(conn, connection.id, run_id),
        employees=pay_by_employee(conn, connection, window, request.scope),
    )


def _raise_if_failed(result: ExtractResult, entity: str) -> None:
    if result.error is None:
        return
    if result.error_kind == "scope":
        raise PreviewRefused(result.error)
    raise PreviewFailed(f"Fetching {entity} from Assignar failed: {result.error}")


def _entity(entity: str, extract: ExtractResult, load: LoadResult) -> EntityPreview:
    counts = load.counts
    return EntityPreview(
        entity=entity,
        fetched=extract.fetched,
        quarantined=extract.quarantined,
        staged_new=extract.counts.inserted,
        staged_changed=extract.counts.updated,
        staged_unchanged=extract.counts.unchanged + extract.counts.stale,
        vanished=extract.voided,
        pay={outcome: getattr(counts, outcome) for outcome in PAY_OUTCOMES},
        minutes=dict(counts.minutes) if entity == "timesheets" else {},
    )


def _in_window(column: sa.ColumnElement, window: tuple[date, date]) -> sa.ColumnElement[bool]:
    """Undated (projects, workers) or inside the window."""
    return sa.or_(column.is_(None), sa.and_(column >= window[0], column < window[1]))


def _conflicts(
    conn: Connection, connection_id: int, window: tuple[date, date], before: dict[str, str]
) -> tuple[list[ConflictPreview], dict[str, int]]:
    """Conflicts holding records of this window after the import, and any the import created or
    changed the status of; plus held records that wait on no conflict, by entity."""
    holds = conn.execute(
        sa.select(sync_hold.c.entity, sync_hold.c.assignar_id, sync_hold_conflict.c.conflict_id)
        .outerjoin(
            sync_hold_conflict,
            sa.and_(
                sync_hold_conflict.c.connection_id == sync_hold.c.connection_id,
                sync_hold_conflict.c.entity == sync_hold.c.entity,
                sync_hold_conflict.c.assignar_id == sync_hold.c.assignar_id,
            ),
        )
        .where(
            sync_hold.c.connection_id == connection_id,
            _in_window(sync_hold.c.work_date, window),
        )
    ).all()
    held: dict[str, dict[str, int]] = {}
    unexplained: dict[str, int] = {}
    for row in holds:
        entity = HOLD_ENTITIES.get(row.entity, row.entity)
        if row.conflict_id is None:
            unexplained[entity] = unexplained.get(entity, 0) + 1
        else:
            counts = held.setdefault(row.conflict_id, {})
            counts[entity] = counts.get(entity, 0) + 1
    rows = conn.execute(
        sa.select(sync_conflict)
        .where(sync_conflict.c.connection_id == connection_id)
        .order_by(sync_conflict.c.kind, sync_conflict.c.summary)
    ).all()
    found = []
    for row in rows:
        was = before.get(row.id)
        if row.id not in held and was == row.status:
            continue
        status = "new" if was is None and row.status == "open" else row.status
        found.append(
            ConflictPreview(
                row.id, row.kind, status, row.summary, held.get(row.id, {}), tuple(row.candidates)
            )
        )
    return found, unexplained


def _quarantined(conn: Connection, connection_id: int, run_id: str) -> list[QuarantinePreview]:
    rows = conn.execute(
        sa.select(
            quarantine.c.entity,
            quarantine.c.assignar_id,
            quarantine.c.work_date,
            quarantine.c.reason,
        )
        .where(
            quarantine.c.connection_id == connection_id,
            quarantine.c.run_id == run_id,
            quarantine.c.released_at.is_(None),
        )
        .order_by(quarantine.c.entity, quarantine.c.work_date, quarantine.c.assignar_id)
    ).all()
    return [QuarantinePreview(r.entity, r.assignar_id, r.work_date, r.reason) for r in rows]


def pay_by_employee(
    conn: Connection,
    connection: ConnectionRow,
    window: tuple[date, date],
    scope: Scope | None = None,
) -> list[EmployeePay]:
    """Minutes and pay per employee of the connection's live Pay timesheets in `window`, only
    those of the scope's projects and workers when it names any (as Assignar calls them)."""
    lines = (
        sa.select(
            timesheet_line.c.timesheet_id,
            sa.func.sum(timesheet_line.c.amount).label("amount"),
            sa.func.sum(
                sa.case((timesheet_line.c.rate.is_(None), timesheet_line.c.minutes), else_=0)
            ).label("unpriced"),
        )
        .group_by(timesheet_line.c.timesheet_id)
        .subquery()
    )
    query = (
        sa.select(
            employee.c.id,
            employee.c.employee_number,
            employee.c.first_name,
            employee.c.last_name,
            sa.func.count(timesheet.c.id).label("timesheets"),
            sa.func.sum(timesheet.c.payable_minutes).label("minutes"),
            sa.func.coalesce(sa.func.sum(lines.c.unpriced), 0).label("unpriced"),
            sa.func.sum(lines.c.amount).label("amount"),
        )
        .select_from(
            timesheet.join(employee, employee.c.id == timesheet.c.employee_id)
            .outerjoin(lines, lines.c.timesheet_id == timesheet.c.id)
            .join(
                staging_timesheet,
                sa.and_(
                    staging_timesheet.c.connection_id == timesheet.c.source_connection_id,
                    staging_timesheet.c.assignar_id == timesheet.c.source_external_id,
                ),
            )
        )
        .where(
            timesheet.c.source_connection_id == connection.id,
            timesheet.c.work_date >= window[0],
            timesheet.c.work_date < window[1],
            timesheet.c.status != "void",
        )
        .group_by(
            employee.c.id, employee.c.employee_number, employee.c.first_name, employee.c.last_name
        )
        .order_by(employee.c.last_name, employee.c.first_name, employee.c.id)
    )
    scope = scope or Scope()
    try:
        if scope.projects:
            ids = project_ids(conn, connection, scope.projects)
            query = query.where(staging_timesheet.c.project_assignar_id.in_(ids))
        if scope.workers:
            ids = worker_ids(conn, connection, scope.workers)
            query = query.where(staging_timesheet.c.user_assignar_id.in_(ids))
    except ScopeError as exc:
        raise PreviewRefused(str(exc)) from None
    return [
        EmployeePay(
            r.id,
            r.employee_number,
            f"{r.first_name} {r.last_name}",
            r.timesheets,
            int(r.minutes or 0),
            int(r.unpriced or 0),
            r.amount if r.amount is not None else Decimal("0.00"),
        )
        for r in conn.execute(query)
    ]

"""Full refresh of one connection's window: stream pages, validate, stage, quarantine, void.

A run materializing a partition (or a range of them) calls `extract` once per connection it
covers. Failures that belong to a connection (bad credentials, maintenance, API access removed)
are returned, recorded in the sync log and left to the caller to report, so that one tenant's
trouble never stops another's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from assignar_pipeline.client import AssignarClient
from assignar_pipeline.cursor import adopt_cursor
from assignar_pipeline.entities import ENTITIES
from assignar_pipeline.errors import AssignarError
from assignar_pipeline.pay.database import lock_connection
from assignar_pipeline.pay.tables import STAGING, sync_state
from assignar_pipeline.readahead import read_ahead
from assignar_pipeline.schemas import validate
from assignar_pipeline.staging import (
    StageCounts,
    quarantine_records,
    refresh_statistics,
    release_quarantine,
    release_stale_quarantine,
    stage_frame,
    void_vanished,
)
from assignar_pipeline.synclog import log_result

#: Records validated and written together; bounds memory whatever the size of a window.
CHUNK_RECORDS = 5_000
#: A long date range is fetched this many days at a time so that the ids kept for voiding stay
#: bounded: a 3-year backfill uses as much memory as a week.
DAYS_PER_FETCH = 7
#: sync_state's window for snapshot entities (projects, workers), which have no dates.
SNAPSHOT = date(1970, 1, 1)
#: Order statuses imported as "confirmed orders" (see the simulator README: the API leaves the
#: status list to each tenant; these are the names Assignar ships).
CONFIRMED_ORDER_STATUSES = frozenset({"confirmed", "completed"})

#: Views of the entity declarations (`entities.py`), by entity name.
RESOURCES = {e.name: e.resource for e in ENTITIES}
WINDOW_FIELDS = {e.name: e.window_field for e in ENTITIES if e.dated}
FIELDS = {e.name: e.fields for e in ENTITIES if e.fields is not None}
#: Records per request: the API's maximum, so a window costs as few round trips as it can.
PAGE_SIZE = 1000


@dataclass(frozen=True)
class Scope:
    """What a run covers besides its connections and dates (the run config's filters)."""

    projects: tuple[str, ...] = ()  # Assignar project codes or names
    workers: tuple[str, ...] = ()  # employee ids, emails or full names
    active_projects_only: bool = False
    confirmed_orders_only: bool = True


@dataclass
class ExtractResult:
    """What one extract did for one connection and entity; becomes a sync-log row."""

    connection_key: str
    entity: str
    window: tuple[date, date] | None
    fetched: int = 0
    counts: StageCounts = field(default_factory=StageCounts)
    voided: int = 0
    quarantined: int = 0
    api_requests: int = 0
    seconds: float = 0.0
    error: str | None = None
    error_kind: str | None = None
    newest: datetime | None = None  # the newest upstream modified_time read so far

    def as_metadata(self) -> dict[str, Any]:
        return {
            "fetched": self.fetched,
            "inserted": self.counts.inserted,
            "updated": self.counts.updated,
            "unchanged": self.counts.unchanged + self.counts.stale,
            "voided": self.voided,
            "quarantined": self.quarantined,
            "api_requests": self.api_requests,
            "seconds": round(self.seconds, 2),
            **({"error": self.error} if self.error else {}),
        }


class ScopeError(ValueError):
    """The run config names something this connection does not have."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def extract(
    engine: Engine,
    client: AssignarClient,
    connection: Any,
    entity: str,
    *,
    run_id: str,
    window: tuple[date, date] | None = None,
    scope: Scope = Scope(),
    now: Callable[[], datetime] = utcnow,
    on_piece: Callable[[tuple[date, date]], None] | None = None,
) -> ExtractResult:
    """Refresh `entity` for one connection: the whole snapshot, or the dates in `window`.

    `on_piece` hears of each date piece of the window once it is staged (progress)."""
    started = time.monotonic()
    requests_before = client.stats.requests
    result = ExtractResult(connection.key, entity, window)
    run_started_at = now()
    start_cursor = None
    try:
        # Newest dates first: the versions read first are then the newest, and they start change
        # detection (below) close to Assignar's now.
        pieces = [None] if window is None else list(split_window(window, DAYS_PER_FETCH))[::-1]
        for piece in pieces:
            _refresh(engine, client, connection, entity, piece, scope, run_id, now, result)
            start_cursor = start_cursor or result.newest
            if on_piece is not None and piece is not None:
                on_piece(piece)
    except (AssignarError, ScopeError) as exc:
        result.error = str(exc)
        result.error_kind = getattr(exc, "kind", "scope")
    if result.error is None and start_cursor is not None:
        # A connection's first complete refresh starts its change detection. A change the
        # refresh did not see happened after its first piece was read, so it is stamped at or
        # after the newest version of that piece (a piece reads in seconds, well within the
        # overlap each delta re-reads); later pieces' versions could be newer than such a change.
        with engine.begin() as conn:
            lock_connection(conn, connection.id)
            adopt_cursor(conn, connection.id, entity, start_cursor, run_id)
    result.api_requests = client.stats.requests - requests_before
    result.seconds = time.monotonic() - started
    with engine.begin() as conn:
        log_result(conn, connection.id, run_id, result, run_started_at, now())
    return result


def split_window(window: tuple[date, date], days: int) -> Iterator[tuple[date, date]]:
    """[start, end) in consecutive pieces of at most `days` days."""
    start, end = window
    while start < end:
        stop = min(end, start + timedelta(days=days))
        yield start, stop
        start = stop


def _refresh(
    engine: Engine,
    client: AssignarClient,
    connection: Any,
    entity: str,
    window: tuple[date, date] | None,
    scope: Scope,
    run_id: str,
    now: Callable[[], datetime],
    result: ExtractResult,
) -> None:
    fetch_started_at = now()
    with engine.connect() as conn:
        filters, local_scope = _filters(conn, client, connection, entity, window, scope)
    seen: set[int] = set()
    written = 0
    # A quarantined record without a readable id could be any staged record of the window, so
    # nothing of the window is voided this time (the next fetch that reads it does the voiding).
    unidentified = False
    # The next chunk's pages are fetched by a reader thread while this chunk is written.
    pages = read_ahead(
        client.iter_pages(
            RESOURCES[entity], filters=filters, fields=FIELDS.get(entity), page_size=PAGE_SIZE
        ),
        ahead=CHUNK_RECORDS // PAGE_SIZE,
    )
    for records in _chunks(pages, CHUNK_RECORDS):
        validated = validate(entity, records, timezone=connection.timezone)
        frame = validated.frame
        if local_scope is not None:
            frame = frame[np.array([local_scope(r) for r in validated.rows], dtype=bool)]
        ids = frame["assignar_id"].tolist()
        result.fetched += len(frame) + len(validated.quarantined)
        if len(validated.frame):
            newest = validated.frame["modified_time"].max().to_pydatetime()
            result.newest = newest if result.newest is None else max(result.newest, newest)
        seen.update(ids)
        seen.update(int(q.assignar_id) for q in validated.quarantined if _is_int(q.assignar_id))
        unidentified |= not all(_is_int(q.assignar_id) for q in validated.quarantined)
        with engine.begin() as conn:
            lock_connection(conn, connection.id)
            counts = stage_frame(conn, entity, connection.id, frame, fetch_started_at)
            written += counts.inserted + counts.updated
            result.counts.add(counts)
            release_quarantine(conn, entity, connection.id, ids, now())
            result.quarantined += quarantine_records(
                conn,
                entity,
                connection.id,
                [(q, _work_date(q.record, entity, window)) for q in validated.quarantined],
                run_id=run_id,
                now=now(),
            )
    with engine.begin() as conn:
        lock_connection(conn, connection.id)
        refresh_statistics(conn, [STAGING[entity]], written)
        if _is_complete(entity, scope) and not unidentified:
            result.voided += len(
                void_vanished(
                    conn,
                    entity,
                    connection.id,
                    seen,
                    fetch_started_at,
                    window=window,
                    scope=_void_scope(entity, filters),
                )
            )
            if not filters.keys() - {f"{WINDOW_FIELDS.get(entity)}__between"}:
                release_stale_quarantine(
                    conn, entity, connection.id, fetch_started_at, now(), window=window
                )
        record_state(conn, connection.id, entity, window, fetch_started_at, run_id)


def _filters(
    conn: Connection,
    client: AssignarClient,
    connection: Any,
    entity: str,
    window: tuple[date, date] | None,
    scope: Scope,
) -> tuple[dict[str, Any], Callable[[dict[str, Any]], bool] | None]:
    """API filters for the window and scope, plus a local filter where the API has none."""
    filters: dict[str, Any] = {}
    local: Callable[[dict[str, Any]], bool] | None = None
    if window is not None:
        filters[f"{WINDOW_FIELDS[entity]}__between"] = [window[0], window[1] - timedelta(days=1)]
    if entity == "projects":
        if scope.active_projects_only:
            filters["active"] = True
        if scope.projects:
            wanted = {_norm(p) for p in scope.projects}
            local = lambda row: _norm(row["code"]) in wanted or _norm(row["name"]) in wanted  # noqa: E731
    elif entity == "workers" and scope.workers:
        wanted = {_norm(w) for w in scope.workers}
        local = lambda row: bool(  # noqa: E731
            {_norm(row["employee_id"]), _norm(row["email"]), _norm(_full(row))} & wanted
        )
    if entity in WINDOW_FIELDS:
        if scope.projects:
            filters["project_id__in"] = project_ids(conn, connection, scope.projects)
        if scope.workers and entity == "timesheets":
            filters["user_id__in"] = worker_ids(conn, connection, scope.workers)
        if entity == "orders" and scope.confirmed_orders_only:
            filters["status_id__in"] = confirmed_status_ids(client)
    return filters, local


def _is_complete(entity: str, scope: Scope) -> bool:
    """Voiding is only safe after a fetch that covered everything it could void."""
    if entity == "projects":
        return not scope.projects and not scope.active_projects_only
    if entity == "workers":
        return not scope.workers
    return True


def _void_scope(entity: str, filters: dict[str, Any]) -> sa.ColumnElement[bool] | None:
    """Restrict voiding to what the filters asked for (a project-filtered window, say)."""
    table = STAGING[entity]
    conditions = []
    if "project_id__in" in filters:
        conditions.append(table.c.project_assignar_id.in_(filters["project_id__in"]))
    if "user_id__in" in filters:
        conditions.append(table.c.user_assignar_id.in_(filters["user_id__in"]))
    if "status_id__in" in filters:
        conditions.append(table.c.status_id.in_(filters["status_id__in"]))
    return sa.and_(*conditions) if conditions else None


def check_scope(conn: Connection, connection: Any, scope: Scope) -> None:
    """Refuse, before anything is launched, names the connection does not have (`ScopeError`):
    the same resolution the extract makes of the run config's projects and workers."""
    if scope.projects:
        project_ids(conn, connection, scope.projects)
    if scope.workers:
        worker_ids(conn, connection, scope.workers)


def project_ids(conn: Connection, connection: Any, names: Sequence[str]) -> list[int]:
    table = STAGING["projects"]
    rows = conn.execute(
        sa.select(table.c.assignar_id, table.c.code, table.c.name).where(
            table.c.connection_id == connection.id
        )
    ).all()
    return _resolve(names, rows, lambda r: (r.code, r.name), "project", connection.key)


def worker_ids(conn: Connection, connection: Any, names: Sequence[str]) -> list[int]:
    table = STAGING["workers"]
    rows = conn.execute(
        sa.select(
            table.c.assignar_id,
            table.c.employee_id,
            table.c.email,
            table.c.first_name,
            table.c.last_name,
        ).where(table.c.connection_id == connection.id)
    ).all()
    return _resolve(
        names, rows, lambda r: (r.employee_id, r.email, _full(r._mapping)), "worker", connection.key
    )


def _resolve(names, rows, keys, what: str, connection_key: str) -> list[int]:
    """Map run-config names to Assignar ids; an unknown name is an error, not an empty run."""
    ids, unknown = [], []
    for name in names:
        matches = [r.assignar_id for r in rows if _norm(name) in {_norm(k) for k in keys(r)}]
        if matches:
            ids += matches
        else:
            unknown.append(name)
    if unknown:
        hint = "" if rows else f" (none are staged yet: materialize assignar_{what}s first)"
        raise ScopeError(
            f"Connection {connection_key!r} has no {what} matching {', '.join(map(repr, unknown))}"
            f"{hint}. Use the Assignar code, name, employee id or email as shown in Assignar."
        )
    return sorted(set(ids))


def confirmed_status_ids(client: AssignarClient) -> list[int]:
    statuses = list(client.iter_records("order-statuses"))
    ids = [s["id"] for s in statuses if str(s.get("name", "")).lower() in CONFIRMED_ORDER_STATUSES]
    if not ids:
        names = ", ".join(repr(s.get("name")) for s in statuses)
        raise ScopeError(
            f"This Assignar account has no order status named Confirmed or Completed ({names}); "
            "set confirmed orders only to false to import orders of every status."
        )
    return ids


def record_state(
    conn: Connection,
    connection_id: int,
    entity: str,
    window: tuple[date, date] | None,
    fetch_started_at: datetime,
    run_id: str,
) -> None:
    """Remember, per day, when its window was last fully fetched (for change detection)."""
    days = [SNAPSHOT] if window is None else list(_days(window))
    keys = {"connection_id": connection_id, "entity": entity}
    conn.execute(
        sync_state.delete().where(
            sync_state.c.connection_id == connection_id,
            sync_state.c.entity == entity,
            sync_state.c.window_start.in_(days),
            sync_state.c.fetch_started_at < fetch_started_at,
        )
    )
    present = set(
        conn.execute(
            sa.select(sync_state.c.window_start).where(
                sync_state.c.connection_id == connection_id,
                sync_state.c.entity == entity,
                sync_state.c.window_start.in_(days),
            )
        ).scalars()
    )
    rows = [
        {**keys, "window_start": day, "fetch_started_at": fetch_started_at, "run_id": run_id}
        for day in days
        if day not in present
    ]
    if rows:
        conn.execute(sync_state.insert(), rows)


def _chunks(pages: Iterator[list[dict[str, Any]]], size: int) -> Iterator[list[dict[str, Any]]]:
    """Regroup API pages into chunks of at least `size` records (the last may be smaller)."""
    chunk: list[dict[str, Any]] = []
    for page in pages:
        chunk += page
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _days(window: tuple[date, date]) -> Iterator[date]:
    day = window[0]
    while day < window[1]:
        yield day
        day += timedelta(days=1)


def _norm(value: Any) -> str:
    return " ".join(str(value or "").split()).casefold()


def _full(row: Any) -> str:
    return f"{row['first_name']} {row['last_name']}"


def _work_date(record: Any, entity: str, window: tuple[date, date] | None) -> date | None:
    """The partition a quarantined record belongs to: its own date if readable."""
    if window is None:
        return None
    try:
        day = date.fromisoformat(str(record.get(WINDOW_FIELDS[entity])))
    except (AttributeError, ValueError):
        return window[0]
    return day if window[0] <= day < window[1] else window[0]


def _is_int(value: str | None) -> bool:
    return value is not None and value.lstrip("-").isdigit()

"""Change detection: a sync applies what Assignar changed since the connection's cursor.

Per connection and dated entity (timesheets, orders), a sync
  1. asks only for records modified at or after the cursor (`modified_time__gte`), walking
     `modified_time` upwards page by page, and stages each page as a delta wherever in history its
     records fall (newer wins, no window is re-fetched for them). The cursor moves in the same
     transaction as the page it covers, so it never passes uncommitted data;
  2. when due (every `PIPELINE_LOOKBACK_EVERY_HOURS`, default 6, and always on a connection's
     first sync), refreshes a short lookback window (the connection's `lookback_days`) by listing
     only the ids and versions in it: records missing from the list were hard-deleted and are
     voided, records listed with a version newer than staged (an upstream commit that landed
     late) are fetched by id. Deletes leave no trace in a delta, so this is what catches them;
  3. fetches, by id, workers and projects that changed records reference but staging lacks, and
     once a day applies the worker and project deltas.
With nothing changed that is one delta request per dated entity (plus a lookback listing per
entity when one is due), and no write besides the sync-log row. The cursor is always a
`modified_time` Assignar stamped, never our clock, so clock skew cannot skip a change; it is
established, before a connection's first full refresh or sync, from the newest `modified_time`
in the account at that moment.

The lookback window ends on the connection's local date of its cursor: Assignar's own "now" as
far as its data shows (a record cannot exist before it is created, so no live record is newer).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from assignar_pipeline.client import AssignarClient
from assignar_pipeline.cursor import (
    MODIFIED_FIELD,
    CursorRow,
    establish_cursor,
    first_page,
    parse_instant,
    read_cursor,
    save_cursor,
)
from assignar_pipeline.entities import BY_NAME, DATED, SNAPSHOTS
from assignar_pipeline.errors import AssignarError
from assignar_pipeline.extract import (
    ScopeError,
    confirmed_status_ids,
    record_state,
)
from assignar_pipeline.pay.database import lock_connection
from assignar_pipeline.pay.tables import STAGING
from assignar_pipeline.per_connection import OpenClient, for_each_connection
from assignar_pipeline.reconcile.rates import refresh_stale_rates
from assignar_pipeline.schemas import validate
from assignar_pipeline.staging import (
    StageCounts,
    quarantine_records,
    release_quarantine,
    stage_rows,
    void_superseded,
    void_vanished,
    work_dates_of,
)
from assignar_pipeline.synclog import log_result

#: Records per delta page (one request when fewer changed).
DELTA_PAGE_SIZE = 500
#: Ids per lookback listing page: ids and versions only, so large pages are cheap.
LISTING_PAGE_SIZE = 1000
#: Ids per by-id request (`id__in`), short enough for any URL length limit.
BY_ID_CHUNK = 100
#: Upstream commits are not instantaneous: a record stamped just before the newest one seen can
#: become visible after it. Each delta re-reads this much before its cursor (the re-read records
#: classify as unchanged and write nothing).
CURSOR_OVERLAP = timedelta(minutes=2)
#: Worker and project deltas, and the cached order statuses, are refreshed this often; in between
#: only the workers and projects that changed records reference are fetched.
SNAPSHOT_EVERY = timedelta(hours=23)


@dataclass
class EntityChange:
    """What one sync did for one connection and entity; becomes one sync-log row."""

    entity: str
    fetched: int = 0
    counts: StageCounts = field(default_factory=StageCounts)
    voided: int = 0
    quarantined: int = 0
    api_requests: int = 0
    window: tuple[date, date] | None = None  # the lookback window refreshed
    cursor_before: datetime | None = None
    cursor_after: datetime | None = None
    baseline: bool = False  # no cursor yet: established by this sync
    dates: Counter[date] = field(default_factory=Counter)  # partitions changed
    referenced: dict[str, set[int]] = field(default_factory=dict)  # snapshot ids seen
    error: str | None = None
    error_kind: str | None = None
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.counts.inserted or self.counts.updated or self.voided)

    def as_metadata(self) -> dict[str, Any]:
        return {
            "fetched": self.fetched,
            "inserted": self.counts.inserted,
            "updated": self.counts.updated,
            "unchanged": self.counts.unchanged + self.counts.stale,
            "voided": self.voided,
            "quarantined": self.quarantined,
            "api_requests": self.api_requests,
            "partitions_changed": len(self.dates),
            **({"error": self.error} if self.error else {}),
        }


# -- one connection ------------------------------------------------------------------------------


@dataclass
class SyncContext:
    """What a sync of one connection shares between its entities."""

    engine: Engine
    client: AssignarClient
    connection: Any
    run_id: str
    now: Callable[[], datetime]
    statuses: list[int] | None = None  # confirmed order statuses, read once per sync at most


def sync_entity(
    ctx: SyncContext, entity: str, lookback_days: int, *, page_size: int = DELTA_PAGE_SIZE
) -> EntityChange:
    """Delta, then lookback, for one dated entity of one connection. Errors are returned."""
    started, before = time.monotonic(), ctx.client.stats.requests
    change = EntityChange(entity)
    try:
        with ctx.engine.connect() as conn:
            cursor = read_cursor(conn, ctx.connection.id, entity)
        if cursor is None:
            change.baseline = True
            since = establish_cursor(
                ctx.engine, ctx.client, ctx.connection, entity, BY_NAME[entity].resource, ctx.run_id
            )
        else:
            change.cursor_before = cursor.modified_since
            since = _apply_delta(ctx, entity, cursor, change, page_size)
        change.cursor_after = since
        if since is not None and lookback_days > 0 and lookback_due(cursor, ctx.now()):
            change.window = lookback_window(entity, since, ctx.connection.timezone, lookback_days)
            _lookback(ctx, entity, change.window, change)
    except (AssignarError, ScopeError) as exc:
        change.error = str(exc)
        change.error_kind = getattr(exc, "kind", "scope")
    change.api_requests = ctx.client.stats.requests - before
    change.seconds = time.monotonic() - started
    return change


def lookback_due(cursor: CursorRow | None, now: datetime) -> bool:
    """Whether this sync re-lists the lookback window.

    Hard deletes are rare and the listing costs a request per entity, so it runs every
    `PIPELINE_LOOKBACK_EVERY_HOURS` hours (0: every sync), not every hour: a quiet hourly sync
    then costs one request per entity. A connection never looked back at is always due.
    """
    every = timedelta(hours=float(os.environ.get("PIPELINE_LOOKBACK_EVERY_HOURS", "6")))
    return cursor is None or cursor.lookback_at is None or now - cursor.lookback_at >= every


def lookback_window(entity: str, cursor: datetime, timezone: str, days: int) -> tuple[date, date]:
    """The local dates a sync re-lists: the last `days` up to the cursor's date (orders: and
    the weeks ahead they are booked for)."""
    anchor = cursor.astimezone(ZoneInfo(timezone)).date()
    ahead = BY_NAME[entity].days_booked_ahead
    return anchor - timedelta(days=days - 1), anchor + timedelta(days=1 + ahead)


def _apply_delta(
    ctx: SyncContext, entity: str, cursor: CursorRow, change: EntityChange, page_size: int
) -> datetime:
    """Stage every record modified since the cursor; returns the cursor afterwards."""
    newest = cursor.modified_since
    for page, covered in changed_pages(
        ctx.client, BY_NAME[entity].resource, cursor.modified_since - CURSOR_OVERLAP, page_size
    ):
        _stage_page(ctx, entity, page, change, cursor_to=max(newest, covered))
        newest = max(newest, covered)
    with ctx.engine.begin() as conn:
        lock_connection(conn, ctx.connection.id)
        save_cursor(conn, ctx.connection.id, entity, newest, ctx.run_id, delta_at=ctx.now())
    return newest


def changed_pages(
    client: AssignarClient, resource: str, since: datetime, page_size: int
) -> Iterator[tuple[list[dict[str, Any]], datetime]]:
    """Pages of records modified at or after `since`, with the cursor each page completes.

    Walks `modified_time` upwards (`sort=modified_time,id`, next page from the last time seen)
    rather than numbering pages: a record edited while we read moves to a later time, so it is
    read again, never skipped. Records of one instant that fill a page are finished by id.
    A page's cursor is the last time on it: every record stamped earlier has been read.
    """
    low, boundary = since, set[int]()
    while True:
        page = first_page(
            client, resource, {f"{MODIFIED_FIELD}__gte": low}, sort=f"{MODIFIED_FIELD},id",
            page_size=page_size,
        )  # fmt: skip
        fresh = [r for r in page if not (_modified(r) == low and r.get("id") in boundary)]
        last = _last_modified(page, low)
        if fresh:
            yield fresh, last
        if len(page) < page_size:
            return
        if last > low:
            low, boundary = last, {r.get("id") for r in page if _modified(r) == last}
            continue
        # A whole page stamped with one instant: read the rest of that instant by id.
        floor = max(r["id"] for r in page if isinstance(r.get("id"), int))
        while True:
            same = first_page(
                client, resource, {MODIFIED_FIELD: low, "id__gt": floor}, sort="id",
                page_size=page_size,
            )  # fmt: skip
            if same:
                yield same, low
            if len(same) < page_size:
                break
            floor = max(r["id"] for r in same if isinstance(r.get("id"), int))
        low, boundary = low + timedelta(milliseconds=1), set()


def _modified(record: dict[str, Any]) -> datetime | None:
    return parse_instant(record.get(MODIFIED_FIELD))


def _last_modified(page: list[dict[str, Any]], low: datetime) -> datetime:
    stamps = [m for m in map(_modified, page) if m is not None]
    return max([low, *stamps])


def _stage_page(
    ctx: SyncContext,
    entity: str,
    records: list[dict[str, Any]],
    change: EntityChange,
    *,
    cursor_to: datetime | None = None,
) -> None:
    """Validate and stage one page of changed records; move the cursor in the same transaction."""
    connection = ctx.connection
    fetched_at = ctx.now()
    validated = validate(entity, records, timezone=connection.timezone)
    rows, left = validated.rows, {}
    if entity == "orders":
        rows, left = _confirmed_only(ctx, rows)
    change.fetched += len(records)
    for kind, key in (("workers", "user_assignar_id"), ("projects", "project_assignar_id")):
        ids = {r[key] for r in rows if r.get(key) is not None}
        if ids:
            change.referenced.setdefault(kind, set()).update(ids)
    with ctx.engine.begin() as conn:
        lock_connection(conn, connection.id)
        counts = stage_rows(conn, entity, connection.id, rows, fetched_at)
        release_quarantine(conn, entity, connection.id, (r["assignar_id"] for r in rows), ctx.now())
        change.quarantined += quarantine_records(
            conn,
            entity,
            connection.id,
            [(q, _record_date(q.record, entity)) for q in validated.quarantined],
            run_id=ctx.run_id,
            now=ctx.now(),
        )
        if left:
            voided = void_superseded(conn, entity, connection.id, left, fetched_at)
            change.voided += len(voided)
            change.dates.update(day for _, day in voided if day is not None)
        if cursor_to is not None:
            save_cursor(conn, connection.id, entity, cursor_to, ctx.run_id)
    change.counts.add(counts)
    change.dates.update(counts.dates)


def _confirmed_only(
    ctx: SyncContext, rows: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], dict[int, datetime]]:
    """Orders that are confirmed (staged) and the others (voided where staged), by version."""
    if not rows:
        return rows, {}
    if ctx.statuses is None:
        ctx.statuses = _order_statuses(ctx)
    keep = [r for r in rows if r["status_id"] in ctx.statuses]
    left = {
        r["assignar_id"]: r["modified_time"] for r in rows if r["status_id"] not in ctx.statuses
    }
    return keep, left


def _order_statuses(ctx: SyncContext) -> list[int]:
    """Confirmed order status ids: cached with the orders cursor for a day (tenant settings)."""
    with ctx.engine.connect() as conn:
        cursor = read_cursor(conn, ctx.connection.id, "orders")
    memo = cursor.memo if cursor else {}
    read_at = parse_instant(memo.get("statuses_at"))
    if memo.get("confirmed_status_ids") and read_at and ctx.now() - read_at < SNAPSHOT_EVERY:
        return list(memo["confirmed_status_ids"])
    ids = confirmed_status_ids(ctx.client)
    if cursor is not None:
        memo = {**memo, "confirmed_status_ids": ids, "statuses_at": ctx.now().isoformat()}
        with ctx.engine.begin() as conn:
            lock_connection(conn, ctx.connection.id)
            save_cursor(
                conn, ctx.connection.id, "orders", cursor.modified_since, ctx.run_id, memo=memo
            )
    return ids


def _record_date(record: Any, entity: str) -> date | None:
    try:
        return date.fromisoformat(str(record.get(BY_NAME[entity].window_field)))
    except (AttributeError, KeyError, ValueError):
        return None


def _lookback(
    ctx: SyncContext, entity: str, window: tuple[date, date], change: EntityChange
) -> None:
    """List the window's ids and versions; void what vanished, fetch what is newer upstream."""
    connection, table = ctx.connection, STAGING[entity]
    listing_started = ctx.now()
    field_name = BY_NAME[entity].window_field
    filters: dict[str, Any] = {f"{field_name}__between": [window[0], window[1] - timedelta(days=1)]}
    if entity == "orders":
        # Only confirmed orders are staged; one that left that set changed, so the delta had it.
        if ctx.statuses is None:
            ctx.statuses = _order_statuses(ctx)
        filters["status_id__in"] = ctx.statuses
    listed: dict[int, datetime | None] = {}
    for page in ctx.client.iter_pages(
        BY_NAME[entity].resource,
        filters=filters,
        fields=["id", MODIFIED_FIELD],
        page_size=LISTING_PAGE_SIZE,
    ):
        listed.update((r["id"], _modified(r)) for r in page if isinstance(r.get("id"), int))
    with ctx.engine.connect() as conn:
        stored = {
            row.assignar_id: row
            for ids in _chunked(list(listed), 5_000)
            for row in conn.execute(
                sa.select(table.c.assignar_id, table.c.modified_time, table.c.voided_at).where(
                    table.c.connection_id == connection.id, table.c.assignar_id.in_(ids)
                )
            )
        }
    newer = [
        i
        for i, version in listed.items()
        if i not in stored
        or version is None
        or stored[i].modified_time < version
        or stored[i].voided_at is not None
    ]
    for ids in _chunked(newer, BY_ID_CHUNK):
        for page in ctx.client.iter_pages(BY_NAME[entity].resource, filters={"id__in": ids}):
            _stage_page(ctx, entity, page, change)
    with ctx.engine.begin() as conn:
        lock_connection(conn, connection.id)
        vanished = void_vanished(
            conn, entity, connection.id, set(listed), listing_started, window=window
        )
        change.voided += len(vanished)
        change.dates.update(work_dates_of(conn, entity, connection.id, vanished))
        record_state(conn, connection.id, entity, window, listing_started, ctx.run_id)
        if change.cursor_after is not None:
            save_cursor(
                conn,
                connection.id,
                entity,
                change.cursor_after,
                ctx.run_id,
                lookback_at=ctx.now(),
            )


def _chunked(items: Sequence[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


# -- workers and projects ------------------------------------------------------------------------


def sync_snapshots(ctx: SyncContext, referenced: dict[str, set[int]]) -> list[EntityChange]:
    """Workers and projects: those referenced but not staged by id, and the daily deltas."""
    changes = []
    for entity in SNAPSHOTS:
        started, before = time.monotonic(), ctx.client.stats.requests
        change = EntityChange(entity)
        try:
            missing = _unstaged(ctx, entity, referenced.get(entity, set()))
            for ids in _chunked(sorted(missing), BY_ID_CHUNK):
                for page in ctx.client.iter_pages(
                    BY_NAME[entity].resource, filters={"id__in": ids}
                ):
                    _stage_page(ctx, entity, page, change)
            with ctx.engine.connect() as conn:
                cursor = read_cursor(conn, ctx.connection.id, entity)
            if cursor is None:
                change.baseline = True
                change.cursor_after = establish_cursor(
                    ctx.engine,
                    ctx.client,
                    ctx.connection,
                    entity,
                    BY_NAME[entity].resource,
                    ctx.run_id,
                )
            elif cursor.delta_at is None or ctx.now() - cursor.delta_at >= SNAPSHOT_EVERY:
                change.cursor_before = cursor.modified_since
                change.cursor_after = _apply_delta(ctx, entity, cursor, change, DELTA_PAGE_SIZE)
        except AssignarError as exc:
            change.error, change.error_kind = str(exc), exc.kind
        change.api_requests = ctx.client.stats.requests - before
        change.seconds = time.monotonic() - started
        if change.api_requests or change.error:
            changes.append(change)
    return changes


def _unstaged(ctx: SyncContext, entity: str, ids: set[int]) -> set[int]:
    if not ids:
        return set()
    table = STAGING[entity]
    with ctx.engine.connect() as conn:
        present = set(
            conn.execute(
                sa.select(table.c.assignar_id).where(
                    table.c.connection_id == ctx.connection.id,
                    table.c.assignar_id.in_(sorted(ids)),
                )
            ).scalars()
        )
    return ids - present


# -- a whole connection, and into Pay -----------------------------------------------------------


@dataclass
class ConnectionSync:
    """One connection's sync: what each entity did, and what was loaded into Pay."""

    connection_key: str
    connection_id: int
    changes: list[EntityChange] = field(default_factory=list)
    loads: list[Any] = field(default_factory=list)  # sync.LoadResult

    @property
    def error(self) -> str | None:
        return next((c.error for c in self.changes if c.error), None)

    @property
    def api_requests(self) -> int:
        return sum(c.api_requests for c in self.changes)

    def dates(self, entity: str) -> Counter[date]:
        found: Counter[date] = Counter()
        for change in self.changes:
            if change.entity == entity:
                found.update(change.dates)
        return found

    def changed(self, entity: str) -> bool:
        return any(c.changed for c in self.changes if c.entity == entity)


def sync_connection(
    engine: Engine,
    client: AssignarClient,
    connection: Any,
    settings: Any,
    *,
    run_id: str,
    now: Callable[[], datetime],
    load: Callable[..., list[Any]] | None = None,
) -> ConnectionSync:
    """Detect and apply one connection's changes, log them, and load what changed into Pay.

    `settings` is its `SyncSettings` (which entities, lookback). `load` is `sync.load_for`;
    each changed run of consecutive dates is loaded as one window.
    """
    result = ConnectionSync(connection.key, connection.id)
    ctx = SyncContext(engine, client, connection, run_id, now)
    referenced: dict[str, set[int]] = {}
    for entity in settings.entities:
        started_at = now()
        change = sync_entity(ctx, entity, settings.lookback_days)
        log_change(engine, connection.id, run_id, change, started_at, now())
        result.changes.append(change)
        for kind, ids in change.referenced.items():
            referenced.setdefault(kind, set()).update(ids)
        if change.error:
            break  # the same account would fail the same way for the next entity
    if not result.error:
        for change in sync_snapshots(ctx, referenced):
            log_change(engine, connection.id, run_id, change, now(), now())
            result.changes.append(change)
    if load is not None:
        for entity in SNAPSHOTS:
            if result.changed(entity):
                result.loads += load(engine, [connection], entity, run_id=run_id, window=None)
        if result.dates("timesheets"):  # the loader wants current rates: fetch them first
            refresh_stale_rates(
                engine, [connection], lambda _: contextlib.nullcontext(client), run_id=run_id
            )
        for entity in DATED:
            for window in date_ranges(result.dates(entity)):
                result.loads += load(engine, [connection], entity, run_id=run_id, window=window)
    return result


def sync_connections(
    engine: Engine,
    connections: Sequence[Any],
    open_client: OpenClient,
    settings: dict[int, Any],
    *,
    run_id: str,
    now: Callable[[], datetime],
    load: Callable[..., list[Any]] | None = None,
) -> list[ConnectionSync]:
    """`sync_connection` for each connection with something to sync (`settings`: connection id →
    `SyncSettings`); one whose client cannot open is logged as a failed `run` and the others go on.
    """

    def step(connection: Any, client: AssignarClient) -> ConnectionSync:
        return sync_connection(
            engine, client, connection, settings[connection.id], run_id=run_id, now=now, load=load
        )

    def failed(connection: Any, error: str, kind: str) -> ConnectionSync:
        change = EntityChange("run", error=error, error_kind=kind)
        return ConnectionSync(connection.key, connection.id, [change])

    wanted = [c for c in connections if settings[c.id].entities]
    return for_each_connection(
        engine, wanted, open_client, step, failed, run_id=run_id, entity="run"
    )


def date_ranges(dates: Iterable[date]) -> list[tuple[date, date]]:
    """Consecutive dates merged into [start, end) windows."""
    ranges: list[tuple[date, date]] = []
    for day in sorted(set(dates)):
        if ranges and ranges[-1][1] == day:
            ranges[-1] = (ranges[-1][0], day + timedelta(days=1))
        else:
            ranges.append((day, day + timedelta(days=1)))
    return ranges


def log_change(
    engine: Engine,
    connection_id: int,
    run_id: str,
    change: EntityChange,
    started_at: datetime,
    finished_at: datetime,
) -> None:
    """The sync-log row of one entity's sync, failed or not (the same row an extract writes)."""
    with engine.begin() as conn:
        log_result(conn, connection_id, run_id, change, started_at, finished_at)

"""Extract and load steps over many connections: each isolated (`per_connection`), each logged."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from assignar_pipeline.client import AssignarClient
from assignar_pipeline.connections import ConnectionRow
from assignar_pipeline.entities import BY_NAME
from assignar_pipeline.extract import (
    DAYS_PER_FETCH,
    ExtractResult,
    Scope,
    extract,
    split_window,
)
from assignar_pipeline.extract import utcnow as _utcnow
from assignar_pipeline.load import (
    LoadCounts,
    load_orders,
    load_projects,
    load_timesheets,
    load_workers,
)
from assignar_pipeline.pay.database import lock_connection
from assignar_pipeline.pay.tables import sync_log
from assignar_pipeline.per_connection import OpenClient, for_each_connection
from assignar_pipeline.reconcile.rates import RATES_MAX_AGE, stale_rates
from assignar_pipeline.synclog import log_failure, log_load

#: Hears that a connection finished a date piece of its window (progress of a long run).
PieceDone = Callable[[str, tuple[date, date]], None]

LOADERS = {
    "projects": load_projects,
    "workers": load_workers,
    "timesheets": load_timesheets,
    "orders": load_orders,
}


def imports(connection: ConnectionRow, entity: str) -> bool:
    """Whether the connection's import options take `entity` (projects and workers: always)."""
    return BY_NAME[entity].imported_by(connection)


def extract_for(
    engine: Engine,
    connections: Sequence[ConnectionRow],
    open_client: OpenClient,
    entity: str,
    *,
    run_id: str,
    window: tuple[date, date] | None,
    scope: Scope,
    on_piece: PieceDone | None = None,
) -> list[ExtractResult]:
    """Extract `entity` for each connection that imports it; a failure is that connection's."""

    def step(connection: ConnectionRow, client: AssignarClient) -> ExtractResult:
        return extract(
            engine,
            client,
            connection,
            entity,
            run_id=run_id,
            window=window,
            scope=scope,
            on_piece=functools.partial(on_piece, connection.key) if on_piece else None,
        )

    def failed(connection: ConnectionRow, error: str, kind: str) -> ExtractResult:
        return ExtractResult(connection.key, entity, window, error=error, error_kind=kind)

    wanted = [c for c in connections if imports(c, entity)]
    return for_each_connection(
        engine, wanted, open_client, step, failed, run_id=run_id, entity=entity, window=window
    )


@dataclass
class LoadResult:
    connection_key: str
    entity: str
    counts: LoadCounts = field(default_factory=LoadCounts)
    seconds: float = 0.0


def load_for(
    engine: Engine,
    connections: Sequence[ConnectionRow],
    entity: str,
    *,
    run_id: str,
    window: tuple[date, date] | None,
    now: Callable[[], datetime] = _utcnow,
    on_piece: PieceDone | None = None,
) -> list[LoadResult]:
    """Load staged `entity` into Pay for each connection, one transaction per window piece.

    Timesheets load only for connections whose Assignar rates are current (`RATES_MAX_AGE`):
    the callers fetch them first, and this refuses, in the sync log, whoever did not.
    """
    results = []
    if entity == "timesheets":
        connections = _with_current_rates(engine, connections, run_id, now())
    for connection in connections:
        started, started_at = time.monotonic(), now()
        result = LoadResult(connection.key, entity)
        pieces = [None] if window is None else list(split_window(window, DAYS_PER_FETCH))
        for piece in pieces:
            with engine.begin() as conn:
                lock_connection(conn, connection.id)
                counts = LOADERS[entity](conn, connection, now(), window=piece)
            result.counts.merge(counts)
            if on_piece is not None and piece is not None:
                on_piece(connection.key, piece)
        result.seconds = time.monotonic() - started
        with engine.begin() as conn:
            log_load(
                conn,
                connection.id,
                run_id,
                entity,
                result.counts,
                window=window,
                started_at=started_at,
                finished_at=now(),
            )
        results.append(result)
    return results


def loadable(
    engine: Engine, connections: Sequence[ConnectionRow], entity: str, *, run_id: str
) -> list[ConnectionRow]:
    """The connections whose fetch of `entity` did not fail earlier in this run.

    A fetch that failed part-way may have staged some pages of a window and not voided what
    vanished; loading that would show Pay readers half a window. Such a connection's Pay rows
    stay as the last complete fetch left them, and the sync log says why.
    """
    with engine.connect() as conn:
        failed = set(
            conn.execute(
                sa.select(sync_log.c.connection_id).where(
                    sync_log.c.run_id == run_id,
                    sync_log.c.entity == entity,
                    sync_log.c.error.is_not(None),
                )
            ).scalars()
        )
    _not_loaded(
        engine,
        [c for c in connections if c.id in failed],
        entity,
        run_id,
        _utcnow(),
        f"fetching {entity} from Assignar failed in this run; Pay keeps what the last complete "
        "fetch loaded.",
    )
    return [c for c in connections if c.id not in failed]


def _with_current_rates(
    engine: Engine, connections: Sequence[ConnectionRow], run_id: str, now: datetime
) -> list[ConnectionRow]:
    stale = {c.id for c in stale_rates(engine, connections, now)}
    minutes = int(RATES_MAX_AGE.total_seconds() // 60)
    _not_loaded(
        engine,
        [c for c in connections if c.id in stale],
        "timesheets",
        run_id,
        now,
        f"Assignar's pay rates were not fetched in the last {minutes} minutes, so no timesheet "
        "could be checked for a Rate Difference. Materialize assignar_pay_rates with "
        "pay_timesheets (imports and syncs fetch them first; see the pay_rates row of the sync "
        "log if that failed).",
    )
    return [c for c in connections if c.id not in stale]


def _not_loaded(
    engine: Engine,
    connections: Sequence[ConnectionRow],
    entity: str,
    run_id: str,
    now: datetime,
    why: str,
) -> None:
    """The sync-log row of each connection whose `entity` this run did not load into Pay."""
    log_failure(
        engine,
        [c.id for c in connections],
        run_id,
        BY_NAME[entity].load_log_entity,
        f"Not loaded into Pay: {why}",
        now,
    )

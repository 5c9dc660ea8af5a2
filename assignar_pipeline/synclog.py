"""The sync log: what happened, per connection and run. This module is its only writer.

Every run writes `sync_log` rows per connection (extract, sync and load steps, each failure);
`sync_run` adds the run's kind (scheduled sync, initial import, bulk import, manual) and, once the
run-status sensors saw it end, its outcome. A run that failed before it could write a row still
gets one per connection from the failure sensor (`record_run_failure`), so the log explains every
run. `status.py` reads it: a connection's status, the last run's counts, the log's rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from assignar_pipeline.entities import BY_NAME
from assignar_pipeline.pay import tables as t
from assignar_pipeline.runs import BULK_IMPORT, INITIAL_IMPORT, OPERATION_TAG, SYNC

#: Run kinds, from the run's `assignar/operation` tag (backfill runs are bulk imports).
KINDS = (SYNC, INITIAL_IMPORT, BULK_IMPORT, "manual")
COUNTS = ("fetched", "inserted", "updated", "unchanged", "voided", "quarantined", "held")


def write_log(
    conn: Connection,
    connection_id: int,
    run_id: str,
    entity: str,
    *,
    started_at: datetime,
    finished_at: datetime,
    window: tuple[date, date] | None = None,
    api_requests: int = 0,
    error: str | None = None,
    **counts: int,
) -> None:
    """One `sync_log` row: a connection's `entity` step in a run, its counts (`COUNTS`) or error.

    Entities: `projects`..`orders` and `pay_rates` fetched from Assignar, `pay_*` loaded into
    Pay, `run` for a run that failed before any step could say why."""
    unknown = counts.keys() - set(COUNTS)
    if unknown:
        raise TypeError(f"sync_log has no count {', '.join(sorted(unknown))}")
    conn.execute(
        t.sync_log.insert().values(
            connection_id=connection_id,
            run_id=run_id[:64],
            entity=entity,
            window_start=window[0] if window else None,
            window_end=window[1] if window else None,
            api_requests=api_requests,
            started_at=started_at,
            finished_at=finished_at,
            error=error,
            **{name: counts.get(name, 0) for name in COUNTS},
        )
    )


class LoggedWork(Protocol):
    """What a fetch's row records: an extract's result or a change-detection sync's."""

    entity: str
    window: tuple[date, date] | None
    fetched: int
    counts: Any  # staging.StageCounts
    voided: int
    quarantined: int
    api_requests: int
    error: str | None


def log_result(
    conn: Connection,
    connection_id: int,
    run_id: str,
    result: LoggedWork,
    started_at: datetime,
    finished_at: datetime,
) -> None:
    """The row of one extract or sync of an entity from Assignar, failed or not."""
    write_log(
        conn,
        connection_id,
        run_id,
        result.entity,
        started_at=started_at,
        finished_at=finished_at,
        window=result.window,
        api_requests=result.api_requests,
        error=result.error,
        fetched=result.fetched,
        inserted=result.counts.inserted,
        updated=result.counts.updated,
        unchanged=result.counts.unchanged + result.counts.stale,
        voided=result.voided,
        quarantined=result.quarantined,
    )


def log_load(
    conn: Connection,
    connection_id: int,
    run_id: str,
    entity: str,
    counts: Any,
    *,
    window: tuple[date, date] | None,
    started_at: datetime,
    finished_at: datetime,
) -> None:
    """The row of one load of `entity` into Pay (`load.LoadCounts`; links count as added)."""
    write_log(
        conn,
        connection_id,
        run_id,
        BY_NAME[entity].load_log_entity,
        started_at=started_at,
        finished_at=finished_at,
        window=window,
        inserted=counts.inserted + counts.linked,
        updated=counts.updated,
        unchanged=counts.unchanged,
        voided=counts.voided,
        held=counts.held,
    )


def log_failure(
    engine: Engine,
    connection_ids: Sequence[int],
    run_id: str,
    entity: str,
    error: str,
    now: datetime,
    window: tuple[date, date] | None = None,
) -> None:
    """An error row for each connection whose `entity` step could not run, in one transaction."""
    if not connection_ids:
        return
    with engine.begin() as conn:
        for connection_id in connection_ids:
            write_log(
                conn, connection_id, run_id, entity, started_at=now, finished_at=now,
                window=window, error=error,
            )  # fmt: skip


def note_run(engine: Engine, run_id: str, kind: str, now: datetime | None = None) -> None:
    """Remember a run's kind when it starts (idempotent: a retried step does not duplicate it)."""
    with engine.begin() as conn:
        exists = conn.execute(
            sa.select(t.sync_run.c.run_id).where(t.sync_run.c.run_id == run_id)
        ).first()
        if exists is None:
            conn.execute(
                t.sync_run.insert().values(
                    run_id=run_id, kind=kind, started_at=now or datetime.now(UTC)
                )
            )


def finish_run(
    engine: Engine,
    run_id: str,
    status: str,
    *,
    kind: str = "manual",
    error: str | None = None,
    now: datetime | None = None,
) -> None:
    """Record how a run ended (run-status sensors); a run never noted is noted now."""
    now = now or datetime.now(UTC)
    note_run(engine, run_id, kind, now)
    with engine.begin() as conn:
        conn.execute(
            t.sync_run.update()
            .where(t.sync_run.c.run_id == run_id)
            .values(status=status, finished_at=now, error=error)
        )


def record_run_failure(
    engine: Engine, run_id: str, connection_ids: Sequence[int], error: str, now: datetime
) -> list[int]:
    """A `run` row for each connection of a failed run that logged no error of its own.

    Returns the connections that got one.
    """
    with engine.begin() as conn:
        explained = set(
            conn.execute(
                sa.select(t.sync_log.c.connection_id).where(
                    t.sync_log.c.run_id == run_id, t.sync_log.c.error.is_not(None)
                )
            ).scalars()
        )
        missing = [c for c in dict.fromkeys(connection_ids) if c not in explained]
        for connection_id in missing:
            write_log(
                conn, connection_id, run_id, "run", started_at=now, finished_at=now, error=error
            )
    return missing


def run_kind(tags: dict[str, str] | Any) -> str:
    """A run's kind from its tags: `assignar/operation`, else a backfill's, else manual."""
    operation = tags.get(OPERATION_TAG)
    if operation in KINDS:
        return operation
    return BULK_IMPORT if tags.get("dagster/backfill") else "manual"

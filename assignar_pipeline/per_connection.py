"""One step over many connections: each with its own client, none stopping the others.

Every loop over connections that calls Assignar (extracts, syncs, fetching rates) runs through
`for_each_connection`. A failure that belongs to one connection (bad credentials, maintenance,
API access removed, a missing secret variable) is written to the sync log as that connection's
error and the next connection goes on; the run then fails naming it (the Dagster layer reads
`status.failed_in_run`). Anything else is a fault of the pipeline and stops the step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from sqlalchemy.engine import Engine

from assignar_pipeline.connections import ConnectionsError
from assignar_pipeline.errors import AssignarError
from assignar_pipeline.synclog import write_log

#: Errors that are one connection's own: its account, its configuration.
CONNECTION_ERRORS = (AssignarError, ConnectionsError)

R = TypeVar("R")
#: Opens a connection's client (a context manager: `resources.assignar.client_for`).
OpenClient = Callable[[Any], AbstractContextManager[Any]]


def for_each_connection(
    engine: Engine,
    connections: Iterable[Any],
    open_client: OpenClient,
    step: Callable[[Any, Any], R],
    failed: Callable[[Any, str, str], R],
    *,
    run_id: str,
    entity: str,
    window: tuple[date, date] | None = None,
) -> list[R]:
    """`step(connection, client)` for each connection, with a client opened for it alone.

    A connection whose client cannot open, or whose step raises one of `CONNECTION_ERRORS`,
    gets a sync-log row for `entity` with the error, and `failed(connection, error, kind)`
    stands for its result. The step logs its own rows when it succeeds.
    """
    results = []
    for connection in connections:
        started_at = datetime.now(UTC)
        try:
            with open_client(connection) as client:
                results.append(step(connection, client))
            continue
        except CONNECTION_ERRORS as exc:
            error, kind = str(exc), getattr(exc, "kind", "configuration")
        with engine.begin() as conn:
            write_log(
                conn, connection.id, run_id, entity, window=window, error=error,
                started_at=started_at, finished_at=datetime.now(UTC),
            )  # fmt: skip
        results.append(failed(connection, error, kind))
    return results

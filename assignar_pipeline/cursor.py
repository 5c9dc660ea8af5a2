"""Change-detection cursors: per connection and entity, the upstream `modified_time` from which the
next delta asks. Always a value Assignar stamped, never our clock; stored in the transaction that
wrote what it covers, and never moved backwards.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from assignar_pipeline.client import AssignarClient
from assignar_pipeline.pay.database import lock_connection
from assignar_pipeline.pay.tables import sync_cursor

MODIFIED_FIELD = "modified_time"


@dataclass
class CursorRow:
    modified_since: datetime
    delta_at: datetime | None
    lookback_at: datetime | None
    memo: dict[str, Any]


def read_cursor(conn: Connection, connection_id: int, entity: str) -> CursorRow | None:
    row = conn.execute(
        sa.select(sync_cursor).where(
            sync_cursor.c.connection_id == connection_id, sync_cursor.c.entity == entity
        )
    ).first()
    if row is None:
        return None
    return CursorRow(row.modified_since, row.delta_at, row.lookback_at, dict(row.memo or {}))


def save_cursor(
    conn: Connection,
    connection_id: int,
    entity: str,
    modified_since: datetime,
    run_id: str,
    **values: Any,
) -> None:
    """Upsert the cursor inside the caller's transaction; it never moves backwards."""
    where = (sync_cursor.c.connection_id == connection_id, sync_cursor.c.entity == entity)
    current = conn.execute(sa.select(sync_cursor.c.modified_since).where(*where)).scalar()
    if current is None:
        conn.execute(
            sync_cursor.insert().values(
                connection_id=connection_id,
                entity=entity,
                modified_since=modified_since,
                run_id=run_id,
                **values,
            )
        )
        return
    conn.execute(
        sync_cursor.update()
        .where(*where)
        .values(modified_since=max(current, modified_since), run_id=run_id, **values)
    )


def adopt_cursor(
    conn: Connection, connection_id: int, entity: str, modified_since: datetime, run_id: str
) -> bool:
    """Start change detection at `modified_since` unless it has started (caller's transaction)."""
    exists = conn.execute(
        sa.select(sync_cursor.c.entity).where(
            sync_cursor.c.connection_id == connection_id, sync_cursor.c.entity == entity
        )
    ).first()
    if exists is None:
        save_cursor(conn, connection_id, entity, modified_since, run_id)
    return exists is None


def establish_cursor(
    engine: Engine,
    client: AssignarClient,
    connection: Any,
    entity: str,
    resource: str,
    run_id: str,
) -> datetime | None:
    """Before a first refresh: the newest `modified_time` in the account becomes the cursor.

    Everything changed later is stamped at or after it and reaches the next delta; what the
    refresh is about to read is older. A cursor that exists is left alone. Costs one request.
    """
    with engine.connect() as conn:
        existing = read_cursor(conn, connection.id, entity)
    if existing is not None:
        return existing.modified_since
    newest = newest_modified(client, resource)
    if newest is None:
        return None
    with engine.begin() as conn:
        lock_connection(conn, connection.id)
        save_cursor(conn, connection.id, entity, newest, run_id)
    return newest


def newest_modified(client: AssignarClient, resource: str) -> datetime | None:
    """The newest `modified_time` of a resource (one request), None when it is empty."""
    page = first_page(
        client, resource, {}, sort=f"-{MODIFIED_FIELD}", page_size=1,
        fields=["id", MODIFIED_FIELD],
    )  # fmt: skip
    return parse_instant(page[0].get(MODIFIED_FIELD)) if page else None


def first_page(
    client: AssignarClient,
    resource: str,
    filters: dict[str, Any],
    *,
    sort: str,
    page_size: int,
    fields: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Exactly one request: page 1 of a sorted, filtered list."""
    pages = client.iter_pages(
        resource, filters=filters, paging="numbered", sort=sort, page_size=page_size, fields=fields
    )
    try:
        return next(pages, [])
    finally:
        pages.close()


def parse_instant(value: Any) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else None

"""Writing validated Assignar records into the typed staging tables, newer knowledge winning.

Runs can overlap (a retry beside an orphaned step, a sync inside a backfill), so every write
compares versions instead of trusting arrival order: an upstream version is applied only if it is
not older than the stored one, and a record missing from a window is voided only if that window's
fetch began after the record was last fetched. Writes are set-based: one query classifies a chunk
against what is stored, one bulk statement writes what changed (COPY + merge on PostgreSQL).
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.types import TypeDecorator

from assignar_pipeline.pay.tables import STAGING, quarantine
from assignar_pipeline.schemas import Quarantined

#: Ids per classification query: well under SQLite's bound-parameter limit.
CLASSIFY_CHUNK = 5_000
#: A write of at least this many rows that is also a fifth of what PostgreSQL's planner believes
#: a table holds refreshes the planner's statistics on the spot. A first import fills empty
#: tables faster than autovacuum looks at them, and queries planned on "0 rows" run as nested
#: loops: the minutes-parity check of a 31-day run of 400 workers took 5 s instead of 0.1 s.
ANALYZE_MIN_ROWS = 1_000


@dataclass
class StageCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    stale: int = 0  # an older version than the stored one arrived late: ignored
    #: Dated entities: rows written per work date (an update that moves a record to another
    #: date counts both), i.e. the partitions this write changed.
    dates: Counter[date] = field(default_factory=Counter)

    def add(self, other: StageCounts) -> None:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.stale += other.stale
        self.dates.update(other.dates)


def stage_rows(
    conn: Connection,
    entity: str,
    connection_id: int,
    rows: Sequence[dict[str, Any]],
    fetched_at: datetime,
) -> StageCounts:
    """Upsert validated rows for one connection; returns what happened to them."""
    table = STAGING[entity]
    counts = StageCounts()
    dated = "work_date" in table.c
    for start in range(0, len(rows), CLASSIFY_CHUNK):
        chunk = rows[start : start + CLASSIFY_CHUNK]
        stored = {
            row.assignar_id: row
            for row in conn.execute(
                sa.select(
                    table.c.assignar_id,
                    table.c.modified_time,
                    table.c.content_hash,
                    table.c.voided_at,
                    *([table.c.work_date] if dated else []),
                ).where(
                    table.c.connection_id == connection_id,
                    table.c.assignar_id.in_([r["assignar_id"] for r in chunk]),
                )
            )
        }
        writes = []
        for row in chunk:
            old = stored.get(row["assignar_id"])
            if old is None:
                counts.inserted += 1
            elif row["modified_time"] < old.modified_time:
                counts.stale += 1
                continue
            elif (
                row["modified_time"] == old.modified_time
                and row["content_hash"] == old.content_hash
                and not (old.voided_at and old.voided_at < fetched_at)
            ):
                counts.unchanged += 1
                continue
            else:
                counts.updated += 1
            if dated:
                counts.dates[row["work_date"]] += 1
                if old is not None and old.work_date != row["work_date"]:
                    counts.dates[old.work_date] += 1
            writes.append(
                {**row, "connection_id": connection_id, "fetched_at": fetched_at, "voided_at": None}
            )
        if writes:
            _upsert(conn, table, writes)
    return counts


def refresh_statistics(conn: Connection, tables: Sequence[sa.Table], written: int) -> None:
    """ANALYZE `tables` (PostgreSQL) when `written` rows are many next to what the planner
    believes the first of them holds (rows this transaction wrote count). Later writes to a big
    table do not trigger it: the planner scales its estimates with the table's size on disk."""
    if conn.dialect.name != "postgresql" or written < ANALYZE_MIN_ROWS:
        return
    believed = conn.execute(
        sa.text("SELECT reltuples FROM pg_class WHERE oid = to_regclass(:name)"),
        {"name": tables[0].name},
    ).scalar()
    if written > 0.2 * max(believed or 0, 0):
        # Identifiers come from our own table definitions, never from input.
        conn.exec_driver_sql(f"ANALYZE {', '.join(t.name for t in tables)}")


def _upsert(conn: Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Insert or replace whole rows keyed by (connection_id, assignar_id).

    The newer-wins guard is repeated in SQL so that the statement stays correct even if another
    writer got in between classification and write (it cannot under the connection lock, but the
    database is the last line of defence).
    """
    key = ["connection_id", "assignar_id"]
    columns = [c.name for c in table.columns]
    if conn.dialect.name == "postgresql":
        _copy_upsert(conn, table, columns, key, rows)
        return
    statement = sqlite_insert(table)
    statement = statement.on_conflict_do_update(
        index_elements=key,
        set_={c: statement.excluded[c] for c in columns if c not in key},
        where=statement.excluded.modified_time >= table.c.modified_time,
    )
    conn.execute(statement, rows)


def _copy_upsert(
    conn: Connection, table: sa.Table, columns: list[str], key: list[str], rows: list[dict]
) -> None:
    """PostgreSQL: COPY into a temporary table, then one INSERT … ON CONFLICT merge."""
    temp = f"tmp_{table.name}"
    conn.exec_driver_sql(
        f"CREATE TEMP TABLE IF NOT EXISTS {temp} (LIKE {table.name} INCLUDING DEFAULTS) "
        "ON COMMIT DELETE ROWS"
    )
    conn.exec_driver_sql(f"TRUNCATE {temp}")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow([_copy_value(table.c[c], row.get(c)) for c in columns])
    buffer.seek(0)
    cursor = conn.connection.dbapi_connection.cursor()
    cursor.copy_expert(
        f"COPY {temp} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv, NULL '\\N')", buffer
    )
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in key)
    # Identifiers come from our own table definitions, never from input.
    conn.exec_driver_sql(
        f"INSERT INTO {table.name} ({', '.join(columns)}) "  # noqa: S608
        f"SELECT {', '.join(columns)} FROM {temp} "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates} "
        f"WHERE EXCLUDED.modified_time >= {table.name}.modified_time"
    )


def _copy_value(column: sa.Column, value: Any) -> str:
    """One CSV field for COPY, converted the way the column's own type converts it."""
    if value is not None and isinstance(column.type, TypeDecorator):
        value = column.type.process_bind_param(value, None)
    if value is None:
        return "\\N"
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def void_vanished(
    conn: Connection,
    entity: str,
    connection_id: int,
    seen_ids: set[int],
    fetch_started_at: datetime,
    *,
    window: tuple[date, date] | None = None,
    scope: sa.ColumnElement[bool] | None = None,
) -> list[int]:
    """Void staged records of a fully refreshed window that the fetch did not return.

    Only rows last fetched before this fetch began: a row staged meanwhile by an overlapping,
    newer run is newer knowledge than our absence of it. Returns the voided ids.
    """
    table = STAGING[entity]
    conditions = [
        table.c.connection_id == connection_id,
        table.c.voided_at.is_(None),
        table.c.fetched_at < fetch_started_at,
    ]
    if window is not None:
        conditions += [table.c.work_date >= window[0], table.c.work_date < window[1]]
    if scope is not None:
        conditions.append(scope)
    candidates = [
        row.assignar_id
        for row in conn.execute(sa.select(table.c.assignar_id).where(*conditions))
        if row.assignar_id not in seen_ids
    ]
    for start in range(0, len(candidates), CLASSIFY_CHUNK):
        conn.execute(
            table.update()
            .where(
                table.c.connection_id == connection_id,
                table.c.assignar_id.in_(candidates[start : start + CLASSIFY_CHUNK]),
            )
            .values(voided_at=fetch_started_at)
        )
    return candidates


def work_dates_of(
    conn: Connection, entity: str, connection_id: int, ids: Sequence[int]
) -> Counter[date]:
    """How many of these staged records fall on each work date (the partitions they touch)."""
    table = STAGING[entity]
    dates: Counter[date] = Counter()
    if "work_date" not in table.c:
        return dates
    for start in range(0, len(ids), CLASSIFY_CHUNK):
        dates.update(
            conn.execute(
                sa.select(table.c.work_date).where(
                    table.c.connection_id == connection_id,
                    table.c.assignar_id.in_(list(ids[start : start + CLASSIFY_CHUNK])),
                )
            ).scalars()
        )
    return dates


def void_superseded(
    conn: Connection,
    entity: str,
    connection_id: int,
    versions: Mapping[int, datetime],
    voided_at: datetime,
) -> list[tuple[int, date | None]]:
    """Void staged records whose newer upstream version left the imported set (an order that is
    no longer confirmed): only where the stored version is not newer. Returns (id, work date)."""
    table = STAGING[entity]
    dated = "work_date" in table.c
    voided: list[tuple[int, date | None]] = []
    ids = list(versions)
    for start in range(0, len(ids), CLASSIFY_CHUNK):
        rows = conn.execute(
            sa.select(
                table.c.assignar_id,
                table.c.modified_time,
                *([table.c.work_date] if dated else []),
            ).where(
                table.c.connection_id == connection_id,
                table.c.assignar_id.in_(ids[start : start + CLASSIFY_CHUNK]),
                table.c.voided_at.is_(None),
            )
        ).all()
        hit = [r for r in rows if r.modified_time <= versions[r.assignar_id]]
        if hit:
            conn.execute(
                table.update()
                .where(
                    table.c.connection_id == connection_id,
                    table.c.assignar_id.in_([r.assignar_id for r in hit]),
                )
                .values(voided_at=voided_at)
            )
        voided += [(r.assignar_id, r.work_date if dated else None) for r in hit]
    return voided


def quarantine_records(
    conn: Connection,
    entity: str,
    connection_id: int,
    records: Iterable[tuple[Quarantined, date | None]],
    *,
    run_id: str,
    now: datetime,
) -> int:
    """Keep invalid records (with the work date they belong to) and their reasons.

    A record quarantined again replaces its open entry, so the table counts records, not runs.
    """
    rows = [
        {
            "connection_id": connection_id,
            "entity": entity,
            "assignar_id": q.assignar_id,
            "work_date": work_date,
            "record": q.record,
            "reason": q.reason,
            "run_id": run_id,
            "quarantined_at": now,
        }
        for q, work_date in records
    ]
    if not rows:
        return 0
    ids = [r["assignar_id"] for r in rows if r["assignar_id"] is not None]
    if ids:
        conn.execute(
            quarantine.update()
            .where(
                quarantine.c.connection_id == connection_id,
                quarantine.c.entity == entity,
                quarantine.c.assignar_id.in_(ids),
                quarantine.c.released_at.is_(None),
            )
            .values(released_at=now)
        )
    conn.execute(quarantine.insert(), rows)
    return len(rows)


def release_quarantine(
    conn: Connection, entity: str, connection_id: int, valid_ids: Iterable[int], now: datetime
) -> int:
    """Records that now validate leave quarantine (they were staged in the same transaction)."""
    ids = [str(i) for i in valid_ids]
    released = 0
    for start in range(0, len(ids), CLASSIFY_CHUNK):
        released += conn.execute(
            quarantine.update()
            .where(
                quarantine.c.connection_id == connection_id,
                quarantine.c.entity == entity,
                quarantine.c.assignar_id.in_(ids[start : start + CLASSIFY_CHUNK]),
                quarantine.c.released_at.is_(None),
            )
            .values(released_at=now)
        ).rowcount
    return released


def release_stale_quarantine(
    conn: Connection,
    entity: str,
    connection_id: int,
    fetch_started_at: datetime,
    now: datetime,
    *,
    window: tuple[date, date] | None = None,
) -> int:
    """After a complete refresh, quarantine shows only what that refresh found invalid.

    Entries quarantined before the fetch began and not quarantined again were fixed (or
    deleted) upstream, even when their id was the malformed part and cannot be matched.
    """
    where = [
        quarantine.c.connection_id == connection_id,
        quarantine.c.entity == entity,
        quarantine.c.released_at.is_(None),
        quarantine.c.quarantined_at < fetch_started_at,
    ]
    if window is not None:
        where += [quarantine.c.work_date >= window[0], quarantine.c.work_date < window[1]]
    return conn.execute(quarantine.update().where(*where).values(released_at=now)).rowcount

"""Writing validated Assignar records into the typed staging tables, newer knowledge winning.

Runs can overlap (a retry beside an orphaned step, a sync inside a backfill), so every write
compares versions instead of trusting arrival order: an upstream version is applied only if it is
not older than the stored one, and a record missing from a window is voided only if that window's
fetch began after the record was last fetched. Writes are set-based: one query classifies a chunk
against what is stored, one bulk statement writes what changed (COPY + merge on PostgreSQL).
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from assignar_pipeline.pay.tables import STAGING, quarantine
from assignar_pipeline.pay.types import UtcDateTime
from assignar_pipeline.schemas import Quarantined, rows_frame, staging_kinds

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
    """Upsert validated rows (dicts, as `Validated.rows`) for one connection."""
    return stage_frame(
        conn, entity, connection_id, rows_frame(staging_kinds(entity), list(rows)), fetched_at
    )


def stage_frame(
    conn: Connection,
    entity: str,
    connection_id: int,
    frame: pd.DataFrame,
    fetched_at: datetime,
) -> StageCounts:
    """Upsert validated rows (`Validated.frame`) for one connection; returns what happened.

    Per chunk: one SELECT of the stored versions, the newer-wins classification in pandas, and
    one bulk statement for what changed (COPY + merge on PostgreSQL, one executemany on SQLite).
    """
    table = STAGING[entity]
    counts = StageCounts()
    dated = "work_date" in table.c
    for start in range(0, len(frame), CLASSIFY_CHUNK):
        chunk = frame.iloc[start : start + CLASSIFY_CHUNK]
        stored = _stored_versions(conn, table, connection_id, chunk["assignar_id"], dated)
        merged = chunk.merge(stored, on="assignar_id", how="left", suffixes=("", "_old"))
        new = merged["modified_time_old"].isna().to_numpy()
        stale = ~new & (merged["modified_time"] < merged["modified_time_old"]).to_numpy()
        voided_before = (merged["voided_at_old"] < pd.Timestamp(fetched_at)).to_numpy()
        unchanged = (
            ~new
            & ~stale
            & (merged["modified_time"] == merged["modified_time_old"]).to_numpy()
            & (merged["content_hash"] == merged["content_hash_old"]).to_numpy()
            & ~voided_before
        )
        updated = ~new & ~stale & ~unchanged
        counts.inserted += int(new.sum())
        counts.updated += int(updated.sum())
        counts.unchanged += int(unchanged.sum())
        counts.stale += int(stale.sum())
        if dated:
            moved = updated & (merged["work_date"] != merged["work_date_old"]).to_numpy()
            counts.dates.update(_day_counts(merged["work_date"][new | updated]))
            counts.dates.update(_day_counts(merged["work_date_old"][moved]))
        writes = new | updated
        if writes.any():
            _upsert(conn, table, chunk[writes], connection_id, fetched_at)
    return counts


def _stored_versions(
    conn: Connection, table: sa.Table, connection_id: int, ids: pd.Series, dated: bool
) -> pd.DataFrame:
    """assignar_id, modified_time_old, content_hash_old, voided_at_old (and work_date_old) of
    the stored rows among `ids`."""
    result = conn.execute(
        sa.select(
            table.c.assignar_id,
            table.c.modified_time,
            table.c.content_hash,
            table.c.voided_at,
            *([table.c.work_date] if dated else []),
        ).where(
            table.c.connection_id == connection_id,
            table.c.assignar_id.in_([int(i) for i in ids]),
        )
    ).all()
    columns = list(zip(*result, strict=True)) if result else [[] for _ in range(4 + dated)]
    stored = {
        "assignar_id": pd.array(columns[0], dtype="Int64"),
        "modified_time_old": _utc_series(columns[1]),
        "content_hash_old": pd.Series(columns[2], dtype=object),
        "voided_at_old": _utc_series(columns[3]),
    }
    if dated:
        stored["work_date_old"] = pd.Series(
            [None if d is None else datetime(d.year, d.month, d.day) for d in columns[4]],
            dtype="datetime64[s]",
        )
    return pd.DataFrame({k: pd.Series(v).reset_index(drop=True) for k, v in stored.items()})


def _utc_series(values: Sequence[datetime | None]) -> pd.Series:
    naive = [None if v is None else v.astimezone(UTC).replace(tzinfo=None) for v in values]
    return pd.Series(naive, dtype="datetime64[us]").dt.tz_localize(UTC)


def _day_counts(days: pd.Series) -> Counter[date]:
    return Counter({day.date(): int(n) for day, n in days.dropna().value_counts().items()})


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


def _upsert(
    conn: Connection, table: sa.Table, frame: pd.DataFrame, connection_id: int, fetched_at: datetime
) -> None:
    """Insert or replace whole rows keyed by (connection_id, assignar_id).

    The newer-wins guard is repeated in SQL so that the statement stays correct even if another
    writer got in between classification and write (it cannot under the connection lock, but the
    database is the last line of defence). Identifiers come from our own table definitions,
    never from input.
    """
    key = ["connection_id", "assignar_id"]
    columns = [c.name for c in table.columns]
    constants = {"connection_id": connection_id, "fetched_at": fetched_at, "voided_at": None}
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key)
    guard = f"WHERE excluded.modified_time >= {table.name}.modified_time"
    if conn.dialect.name == "postgresql":
        temp = f"tmp_{table.name}"
        conn.exec_driver_sql(
            f"CREATE TEMP TABLE IF NOT EXISTS {temp} (LIKE {table.name} INCLUDING DEFAULTS) "
            "ON COMMIT DELETE ROWS"
        )
        conn.exec_driver_sql(f"TRUNCATE {temp}")
        cells = [
            _copy_cells(table.c[c], frame.get(c), constants.get(c), len(frame)) for c in columns
        ]
        lines = cells[0]
        for column in cells[1:]:
            lines = lines + "," + column
        buffer = io.StringIO("".join(lines + "\n"))
        cursor = conn.connection.dbapi_connection.cursor()
        cursor.copy_expert(
            f"COPY {temp} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv, NULL '\\N')",
            buffer,
        )
        conn.exec_driver_sql(
            f"INSERT INTO {table.name} ({', '.join(columns)}) "  # noqa: S608
            f"SELECT {', '.join(columns)} FROM {temp} "
            f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates} {guard}"
        )
        return
    values = [
        _sqlite_values(table.c[c], frame.get(c), constants.get(c), len(frame)) for c in columns
    ]
    conn.exec_driver_sql(
        f"INSERT INTO {table.name} ({', '.join(columns)}) "  # noqa: S608
        f"VALUES ({', '.join('?' for _ in columns)}) "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates} {guard}",
        list(zip(*values, strict=True)),
    )


# Values as the column types would bind them: instants as naive UTC "YYYY-MM-DD HH:MM:SS.ffffff"
# (SQLAlchemy's SQLite storage format, which SQLite compares as text), dates "YYYY-MM-DD".
def _sqlite_values(column: sa.Column, values: pd.Series | None, constant: Any, n: int) -> list:
    if values is None:
        if isinstance(constant, datetime):
            constant = _timestamp_text(pd.Series([constant]).astype("datetime64[us, UTC]"))[0]
        return [constant] * n
    missing = values.isna().to_numpy()
    if isinstance(column.type, UtcDateTime):
        out = _timestamp_text(values)
    elif isinstance(column.type, sa.Date):
        out = np.datetime_as_string(values.to_numpy(), unit="D").astype(object)
    elif isinstance(column.type, sa.Boolean):
        out = values.to_numpy(dtype=bool, na_value=False).astype(np.int64).astype(object)
    elif isinstance(column.type, sa.Integer):
        out = values.to_numpy(dtype=np.int64, na_value=0).astype(object)
    else:  # text, and JSON already as its text
        out = values.to_numpy(dtype=object)
    return np.where(missing, None, out).tolist() if missing.any() else out.tolist()


def _copy_cells(column: sa.Column, values: pd.Series | None, constant: Any, n: int) -> np.ndarray:
    """CSV fields for COPY: NULL as an unquoted \\N, text always quoted (so "\\N" is text)."""
    if values is None:
        if constant is None:
            return np.full(n, "\\N", dtype=object)
        values = pd.Series([constant] * n)
        if isinstance(constant, datetime):
            values = values.astype("datetime64[us, UTC]")
    missing = values.isna().to_numpy()
    if isinstance(column.type, UtcDateTime):
        out = _timestamp_text(values)
    elif isinstance(column.type, sa.Date):
        out = np.datetime_as_string(values.to_numpy(), unit="D").astype(object)
    elif isinstance(column.type, sa.Boolean):
        out = np.where(values.to_numpy(dtype=bool, na_value=False), "t", "f").astype(object)
    elif isinstance(column.type, sa.Integer):
        out = values.to_numpy(dtype=np.int64, na_value=0).astype(str).astype(object)
    else:  # text, and JSON already as its text
        text = values.to_numpy(dtype=object)
        out = np.array(
            [
                "" if m else '"' + t.replace('"', '""') + '"'
                for t, m in zip(text, missing, strict=True)
            ],
            dtype=object,
        )
    return np.where(missing, "\\N", out) if missing.any() else out


def _timestamp_text(values: pd.Series) -> np.ndarray:
    wall = values.dt.tz_convert(UTC).dt.tz_localize(None).to_numpy().astype("datetime64[us]")
    text = np.datetime_as_string(wall, unit="us").astype(object)
    return np.array([t[:10] + " " + t[11:] for t in text], dtype=object)


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

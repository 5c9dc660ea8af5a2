"""Export everything the integration holds for some connections: one zip of CSV files.

Taken before big changes ("export key data before major changes"): a connection's settings
(the NAME of its secret's variable, never a secret), links, conflicts, resolutions and
adjustments with who decided, holds, quarantine, sync log, and the Pay timesheets and orders it
loaded with their lines. Each CSV opens in a spreadsheet (UTF-8 with a byte-order mark, so Excel
reads names right); money, rates and quantities are exact decimal strings, instants ISO 8601 UTC.
`manifest.json` lists each file with its row count, size and SHA-256.

Rows stream from one read-only snapshot of the database straight into the zip, a thousand at a
time, so memory stays flat whatever the size. The file appears under its name only when
complete: it is written beside it and renamed at the end.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zipfile import ZIP_DEFLATED

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from assignar_pipeline.connections import ConnectionRow, all_connections
from assignar_pipeline.pay import tables as t
from assignar_pipeline.pay.database import SNAPSHOT_READ
from assignar_pipeline.reconcile.conflicts import KIND_LABELS
from assignar_pipeline.reconcile.policy import thresholds_for

FORMAT = "assignar-pay-export"
VERSION = 1
#: Rows fetched (server-side cursor on PostgreSQL) and written per step.
ROWS_PER_FETCH = 1_000
BOM = "\ufeff"
#: The files `window` limits (to their work date or start date); the others are always whole.
DATED_FILES = ("timesheets.csv", "timesheet_lines.csv", "adjustments.csv", "orders.csv",
               "order_lines.csv")  # fmt: skip


class ExportRefused(ValueError):
    """The export cannot be taken as asked; the message says what to fix."""


@dataclass(frozen=True)
class ExportedFile:
    name: str
    description: str
    rows: int
    bytes: int
    sha256: str


@dataclass(frozen=True)
class ExportResult:
    path: Path
    connections: tuple[str, ...]
    window: tuple[date, date] | None  # inclusive
    files: tuple[ExportedFile, ...]

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    def file(self, name: str) -> ExportedFile:
        return next(f for f in self.files if f.name == name)


@dataclass(frozen=True)
class _Table:
    """One CSV file: its name, what it holds, and how to read its rows."""

    name: str
    description: str
    rows: Callable[[Connection, list[int], tuple[date, date] | None], Iterable[Sequence[Any]]]
    header: tuple[str, ...]


def export_connections(
    engine: Engine,
    keys: Sequence[str],
    out: str | os.PathLike[str],
    *,
    window: tuple[date, date] | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> ExportResult:
    """Write the export of `keys` (active or disconnected) to the zip `out`; `window` (both dates
    inclusive) limits the timesheets, orders and adjustments to those dates."""
    path = Path(out)
    connections = _connections(engine, keys)
    if window is not None and window[1] < window[0]:
        raise ExportRefused(
            f"The window ends ({window[1]}) before it starts ({window[0]}): give --to on or "
            "after --from."
        )
    if path.exists():
        raise ExportRefused(f"{path} already exists: choose a new file name (nothing is replaced).")
    if not path.parent.is_dir():
        raise ExportRefused(f"The folder {path.parent} does not exist: create it first.")
    partial = path.with_name(path.name + ".partial")
    ids = [c.id for c in connections]
    dates = None if window is None else (window[0], window[1] + timedelta(days=1))
    try:
        with read_snapshot(engine) as conn, zipfile.ZipFile(partial, "w", ZIP_DEFLATED) as zf:
            files = [_write(zf, table, table.rows(conn, ids, dates)) for table in TABLES]
            zf.writestr(
                "manifest.json",
                json.dumps(_manifest(connections, window, files, now()), indent=2) + "\n",
            )
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return ExportResult(path, tuple(c.key for c in connections), window, tuple(files))


def _connections(engine: Engine, keys: Sequence[str]) -> list[ConnectionRow]:
    if not keys:
        raise ExportRefused("Name the connection(s) to export (--connection KEY).")
    rows = {r.key: r for r in all_connections(engine)}
    unknown = [k for k in dict.fromkeys(keys) if k not in rows]
    if unknown:
        known = ", ".join(rows) or "none yet"
        raise ExportRefused(
            f"Unknown connection key(s): {', '.join(map(repr, unknown))}. Known keys: {known}."
        )
    return [rows[k] for k in dict.fromkeys(keys)]


@contextmanager
def read_snapshot(engine: Engine) -> Iterator[Connection]:
    """One read-only transaction: every file of an export sees the same moment of the database.

    PostgreSQL: REPEATABLE READ, read only. SQLite: a deferred transaction (WAL), which unlike
    the pipeline's writers does not take the write lock, so imports carry on meanwhile.
    """
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        else:
            conn.execution_options(**{SNAPSHOT_READ: True})
        transaction = conn.begin()
        try:
            yield conn
        finally:
            transaction.rollback()  # it only read


def _write(zf: zipfile.ZipFile, table: _Table, rows: Iterable[Sequence[Any]]) -> ExportedFile:
    """Stream one CSV into the zip, counting rows and hashing exactly the bytes stored."""
    digest, size, count = hashlib.sha256(), 0, 0
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    with zf.open(table.name, "w", force_zip64=True) as entry:

        def flush() -> None:
            nonlocal size
            data = buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
            digest.update(data)
            size += len(data)
            entry.write(data)

        buffer.write(BOM)
        writer.writerow(table.header)
        for row in rows:
            writer.writerow([cell(v) for v in row])
            count += 1
            if count % ROWS_PER_FETCH == 0:
                flush()
        flush()
    return ExportedFile(table.name, table.description, count, size, digest.hexdigest())


def cell(value: Any) -> str:
    """One CSV field: exact decimals, ISO dates and UTC instants, JSON for structures."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return str(value)


def _manifest(
    connections: list[ConnectionRow],
    window: tuple[date, date] | None,
    files: list[ExportedFile],
    exported_at: datetime,
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": exported_at.isoformat(),
        "connections": [{"key": c.key, "id": c.id, "team_id": c.team_id} for c in connections],
        "window": None
        if window is None
        else {
            "from": window[0].isoformat(),
            "to": window[1].isoformat(),
            "applies_to": list(DATED_FILES),
        },
        "encoding": "UTF-8 with byte-order mark; comma-separated; CRLF line ends",
        "files": [
            {
                "name": f.name,
                "description": f.description,
                "rows": f.rows,
                "bytes": f.bytes,
                "sha256": f.sha256,
            }
            for f in files
        ],
    }


# -- what each file holds ------------------------------------------------------------------------


def _stream(conn: Connection, query: sa.Select) -> Iterator[Sequence[Any]]:
    """Rows a batch at a time (a server-side cursor on PostgreSQL), never all at once."""
    result = conn.execute(query.execution_options(yield_per=ROWS_PER_FETCH))
    for partition in result.partitions():
        yield from partition


def _labelled(*columns: tuple[str, Any]) -> tuple[tuple[str, ...], list[Any]]:
    return tuple(name for name, _ in columns), [expr.label(name) for name, expr in columns]


def _dated(column: Any, dates: tuple[date, date] | None) -> list[Any]:
    return [] if dates is None else [column >= dates[0], column < dates[1]]


C = t.connection
DECIDER = t.pay_user.alias("decider")


def _connection_rows(conn: Connection, ids: list[int], _dates: Any) -> Iterator[list[Any]]:
    teams = dict(conn.execute(sa.select(t.team.c.id, t.team.c.name)).all())
    users = dict(conn.execute(sa.select(t.pay_user.c.id, t.pay_user.c.email)).all())
    for row in conn.execute(sa.select(C).where(C.c.id.in_(ids)).order_by(C.c.key)):
        limits = thresholds_for(conn, row.id)
        webhook = row.webhook_url
        yield [
            row.key, row.id, row.team_id, teams.get(row.team_id), row.region, row.client_id,
            row.client_secret_ref, row.timezone, row.import_timesheets, row.import_orders,
            row.status, users.get(row.connected_by_user_id), row.created_at, row.disconnected_at,
            row.sync_frequency, row.sync_time, row.sync_weekday, row.auto_sync_timesheets,
            row.auto_sync_orders, row.lookback_days, row.notify_emails,
            # A literal webhook URL may carry a token: like the CLI, say only that it is set.
            webhook if webhook is None or webhook.startswith("env:") else "set (URL not exported)",
            Decimal(str(limits.project_name)), Decimal(str(limits.worker_name)),
            limits.rate_tolerance,
        ]  # fmt: skip


CONNECTION_HEADER = (
    "connection", "connection_id", "team_id", "team", "region", "client_id",
    "client_secret_variable", "timezone", "import_timesheets", "import_orders", "status",
    "connected_by", "created_at", "disconnected_at", "sync_frequency", "sync_time",
    "sync_weekday", "auto_sync_timesheets", "auto_sync_orders", "lookback_days",
    "notify_emails", "webhook", "project_name_threshold", "worker_name_threshold",
    "rate_tolerance",
)  # fmt: skip

L = t.integration_link
LINK_HEADER, _LINK_COLUMNS = _labelled(
    ("connection", C.c.key),
    ("entity", L.c.entity),
    ("assignar_id", L.c.external_id),
    ("pay_id", L.c.pay_id),
    ("match_rule", L.c.match_rule),
    ("resolution_id", L.c.resolution_id),
    ("pay_name", sa.func.coalesce(
        t.project.c.name, t.employee.c.first_name + " " + t.employee.c.last_name, t.client.c.name
    )),
    ("pay_code", sa.func.coalesce(t.project.c.code, t.employee.c.employee_number, t.client.c.code)),
)  # fmt: skip


def _link_rows(conn: Connection, ids: list[int], _dates: Any) -> Iterator[Sequence[Any]]:
    query = (
        sa.select(*_LINK_COLUMNS)
        .select_from(
            L.join(C, C.c.id == L.c.connection_id)
            .outerjoin(t.project, sa.and_(L.c.entity == "project", t.project.c.id == L.c.pay_id))
            .outerjoin(t.employee, sa.and_(L.c.entity == "worker", t.employee.c.id == L.c.pay_id))
            .outerjoin(t.client, sa.and_(L.c.entity == "client", t.client.c.id == L.c.pay_id))
        )
        .where(L.c.connection_id.in_(ids))
        .order_by(C.c.key, L.c.entity, L.c.external_id)
    )
    return _stream(conn, query)


K = t.sync_conflict
CONFLICT_HEADER, _CONFLICT_COLUMNS = _labelled(
    ("connection", C.c.key),
    ("conflict_id", K.c.id),
    ("kind", K.c.kind),
    ("status", K.c.status),
    ("subject", K.c.subject_entity),
    ("subject_assignar_id", K.c.subject_external_id),
    ("summary", K.c.summary),
    ("first_seen_at", K.c.first_seen_at),
    ("last_seen_at", t.sync_conflict_seen.c.last_seen_at),
    ("resolution_id", K.c.resolution_id),
    ("candidates", K.c.candidates),
    ("details", K.c.details),
)


def _conflict_rows(conn: Connection, ids: list[int], _dates: Any) -> Iterator[Sequence[Any]]:
    query = (
        sa.select(*_CONFLICT_COLUMNS)
        .select_from(
            K.join(C, C.c.id == K.c.connection_id).outerjoin(
                t.sync_conflict_seen, t.sync_conflict_seen.c.conflict_id == K.c.id
            )
        )
        .where(K.c.connection_id.in_(ids))
        .order_by(C.c.key, K.c.first_seen_at, K.c.id)
    )
    for row in _stream(conn, query):
        values = list(row)
        values[2] = KIND_LABELS.get(values[2], values[2])
        yield values


R = t.sync_resolution
RESOLUTION_HEADER, _RESOLUTION_COLUMNS = _labelled(
    ("connection", C.c.key),
    ("resolution_id", R.c.id),
    ("conflict_id", R.c.conflict_id),
    ("kind", R.c.kind),
    ("decision", R.c.decision),
    ("target_pay_id", R.c.target_pay_id),
    ("rate", R.c.rate),
    ("apply_scope", R.c.apply_scope),
    ("effective_from", R.c.effective_from),
    ("decided_by", DECIDER.c.email),
    ("decided_by_name", DECIDER.c.full_name),
    ("decided_at", R.c.decided_at),
    ("note", R.c.note),
    ("params", R.c.params),
)


def _resolution_rows(conn: Connection, ids: list[int], _dates: Any) -> Iterator[Sequence[Any]]:
    query = (
        sa.select(*_RESOLUTION_COLUMNS)
        .select_from(
            R.join(C, C.c.id == R.c.connection_id).join(
                DECIDER, DECIDER.c.id == R.c.decided_by_user_id
            )
        )
        .where(R.c.connection_id.in_(ids))
        .order_by(C.c.key, R.c.id)
    )
    for row in _stream(conn, query):
        values = list(row)
        values[3] = KIND_LABELS.get(values[3], values[3])
        yield values


TS = t.timesheet
A = t.timesheet_adjustment
ADJUSTMENT_HEADER, _ADJUSTMENT_COLUMNS = _labelled(
    ("connection", C.c.key),
    ("adjustment_id", A.c.id),
    ("timesheet_id", A.c.timesheet_id),
    ("assignar_timesheet_id", TS.c.source_external_id),
    ("work_date", TS.c.work_date),
    ("conflict_id", A.c.conflict_id),
    ("delta_minutes", A.c.delta_minutes),
    ("delta_amount", A.c.delta_amount),
    ("reason", A.c.reason),
    ("status", A.c.status),
    ("decided_by", DECIDER.c.email),
    ("decided_at", A.c.decided_at),
)


def _adjustment_rows(conn: Connection, ids: list[int], dates: Any) -> Iterator[Sequence[Any]]:
    query = (
        sa.select(*_ADJUSTMENT_COLUMNS)
        .select_from(
            A.join(TS, TS.c.id == A.c.timesheet_id)
            .join(C, C.c.id == TS.c.source_connection_id)
            .join(DECIDER, DECIDER.c.id == A.c.decided_by_user_id)
        )
        .where(TS.c.source_connection_id.in_(ids), *_dated(TS.c.work_date, dates))
        .order_by(C.c.key, A.c.id)
    )
    return _stream(conn, query)


H, HC = t.sync_hold, t.sync_hold_conflict
HOLD_HEADER, _HOLD_COLUMNS = _labelled(
    ("connection", C.c.key),
    ("entity", H.c.entity),
    ("assignar_id", H.c.assignar_id),
    ("work_date", H.c.work_date),
    ("reason", H.c.reason),
    ("held_since", H.c.held_since),
    ("conflict_id", HC.c.conflict_id),
)


def _hold_rows(conn: Connection, ids: list[int], _dates: Any) -> Iterator[Sequence[Any]]:
    query = (
        sa.select(*_HOLD_COLUMNS)
        .select_from(
            H.join(C, C.c.id == H.c.connection_id).outerjoin(
                HC,
                sa.and_(
                    HC.c.connection_id == H.c.connection_id,
                    HC.c.entity == H.c.entity,
                    HC.c.assignar_id == H.c.assignar_id,
                ),
            )
        )
        .where(H.c.connection_id.in_(ids))
        .order_by(C.c.key, H.c.entity, H.c.assignar_id, HC.c.conflict_id)
    )
    return _stream(conn, query)


Q = t.quarantine
QUARANTINE_HEADER, _QUARANTINE_COLUMNS = _labelled(
    ("connection", C.c.key),
    ("entity", Q.c.entity),
    ("assignar_id", Q.c.assignar_id),
    ("work_date", Q.c.work_date),
    ("reason", Q.c.reason),
    ("run_id", Q.c.run_id),
    ("quarantined_at", Q.c.quarantined_at),
    ("released_at", Q.c.released_at),
    ("record", Q.c.record),
)


def _quarantine_rows(conn: Connection, ids: list[int], _dates: Any) -> Iterator[Sequence[Any]]:
    query = (
        sa.select(*_QUARANTINE_COLUMNS)
        .select_from(Q.join(C, C.c.id == Q.c.connection_id))
        .where(Q.c.connection_id.in_(ids))
        .order_by(C.c.key, Q.c.id)
    )
    return _stream(conn, query)


S = t.sync_log
SYNC_LOG_HEADER, _SYNC_LOG_COLUMNS = _labelled(
    ("connection", C.c.key),
    ("run_id", S.c.run_id),
    ("entity", S.c.entity),
    ("window_start", S.c.window_start),
    ("window_end_exclusive", S.c.window_end),
    *((name, S.c[name]) for name in ("fetched", "inserted", "updated", "unchanged", "voided",
                                     "quarantined", "held", "api_requests", "started_at",
                                     "finished_at", "error")),
)  # fmt: skip


def _sync_log_rows(conn: Connection, ids: list[int], _dates: Any) -> Iterator[Sequence[Any]]:
    query = (
        sa.select(*_SYNC_LOG_COLUMNS)
        .select_from(S.join(C, C.c.id == S.c.connection_id))
        .where(S.c.connection_id.in_(ids))
        .order_by(C.c.key, S.c.id)
    )
    return _stream(conn, query)


E, P = t.employee, t.project
TIMESHEET_HEADER, _TIMESHEET_COLUMNS = _labelled(
    ("connection", C.c.key),
    ("timesheet_id", TS.c.id),
    ("assignar_id", TS.c.source_external_id),
    ("work_date", TS.c.work_date),
    ("employee_id", TS.c.employee_id),
    ("employee_number", E.c.employee_number),
    ("employee", E.c.first_name + " " + E.c.last_name),
    ("project_id", TS.c.project_id),
    ("project_code", P.c.code),
    ("project", P.c.name),
    ("start_at", TS.c.start_at),
    ("end_at", TS.c.end_at),
    ("timezone", TS.c.timezone),
    ("elapsed_minutes", TS.c.elapsed_minutes),
    ("payable_minutes", TS.c.payable_minutes),
    ("status", TS.c.status),
    ("void_reason", TS.c.void_reason),
    ("locked_at", TS.c.locked_at),
    ("assignar_status", TS.c.source_status),
    ("assignar_modified_at", TS.c.source_modified_at),
    ("source_version", TS.c.source_version),
)


def _timesheet_rows(conn: Connection, ids: list[int], dates: Any) -> Iterator[Sequence[Any]]:
    query = (
        sa.select(*_TIMESHEET_COLUMNS)
        .select_from(
            TS.join(C, C.c.id == TS.c.source_connection_id)
            .join(E, E.c.id == TS.c.employee_id)
            .outerjoin(P, P.c.id == TS.c.project_id)
        )
        .where(TS.c.source_connection_id.in_(ids), *_dated(TS.c.work_date, dates))
        .order_by(C.c.key, TS.c.work_date, TS.c.id)
    )
    return _stream(conn, query)


TL = t.timesheet_line
LINE_HEADER, _LINE_COLUMNS = _labelled(
    ("connection", C.c.key),
    ("timesheet_id", TL.c.timesheet_id),
    ("assignar_timesheet_id", TS.c.source_external_id),
    ("work_date", TS.c.work_date),
    ("line_no", TL.c.line_no),
    ("cost_code", TL.c.cost_code),
    ("minutes", TL.c.minutes),
    ("pay_code", t.pay_code.c.code),
    ("rate", TL.c.rate),
    ("amount", TL.c.amount),
    ("rate_source", TL.c.rate_source),
    ("pay_rate_id", TL.c.pay_rate_id),
    ("resolution_id", TL.c.resolution_id),
    ("assignar_activity_ref", TL.c.source_item_ref),
)


def _line_rows(conn: Connection, ids: list[int], dates: Any) -> Iterator[Sequence[Any]]:
    query = (
        sa.select(*_LINE_COLUMNS)
        .select_from(
            TL.join(TS, TS.c.id == TL.c.timesheet_id)
            .join(C, C.c.id == TS.c.source_connection_id)
            .outerjoin(t.pay_code, t.pay_code.c.id == TL.c.pay_code_id)
        )
        .where(TS.c.source_connection_id.in_(ids), *_dated(TS.c.work_date, dates))
        .order_by(C.c.key, TS.c.work_date, TL.c.timesheet_id, TL.c.line_no)
    )
    return _stream(conn, query)


PO, POL = t.pay_order, t.pay_order_line
ORDER_HEADER, _ORDER_COLUMNS = _labelled(
    ("connection", C.c.key),
    ("order_id", PO.c.id),
    ("assignar_id", PO.c.source_external_id),
    ("start_date", PO.c.start_date),
    ("end_date", PO.c.end_date),
    ("order_number", PO.c.order_number),
    ("po_number", PO.c.po_number),
    ("project_id", PO.c.project_id),
    ("project_code", P.c.code),
    ("project", P.c.name),
    ("status", PO.c.status),
    ("voided", PO.c.voided),
    ("description", PO.c.description),
)


def _order_rows(conn: Connection, ids: list[int], dates: Any) -> Iterator[Sequence[Any]]:
    query = (
        sa.select(*_ORDER_COLUMNS)
        .select_from(
            PO.join(C, C.c.id == PO.c.source_connection_id).outerjoin(P, P.c.id == PO.c.project_id)
        )
        .where(PO.c.source_connection_id.in_(ids), *_dated(PO.c.start_date, dates))
        .order_by(C.c.key, PO.c.start_date, PO.c.id)
    )
    return _stream(conn, query)


ORDER_LINE_HEADER, _ORDER_LINE_COLUMNS = _labelled(
    ("connection", C.c.key),
    ("order_id", POL.c.order_id),
    ("assignar_order_id", PO.c.source_external_id),
    ("line_no", POL.c.line_no),
    ("cost_code", POL.c.cost_code),
    ("description", POL.c.description),
    ("quantity", POL.c.quantity),
    ("unit", POL.c.unit),
)


def _order_line_rows(conn: Connection, ids: list[int], dates: Any) -> Iterator[Sequence[Any]]:
    query = (
        sa.select(*_ORDER_LINE_COLUMNS)
        .select_from(
            POL.join(PO, PO.c.id == POL.c.order_id).join(C, C.c.id == PO.c.source_connection_id)
        )
        .where(PO.c.source_connection_id.in_(ids), *_dated(PO.c.start_date, dates))
        .order_by(C.c.key, PO.c.start_date, POL.c.order_id, POL.c.line_no)
    )
    return _stream(conn, query)


TABLES = (
    _Table("connections.csv", "Settings of each connection (the secret's variable name, never "
           "a secret)", _connection_rows, CONNECTION_HEADER),
    _Table("links.csv", "Assignar record → Pay record links and the rule that made each",
           _link_rows, LINK_HEADER),
    _Table("conflicts.csv", "Conflicts with their candidates and both sides", _conflict_rows,
           CONFLICT_HEADER),
    _Table("resolutions.csv", "How conflicts were resolved, and who decided", _resolution_rows,
           RESOLUTION_HEADER),
    _Table("adjustments.csv", "Decided changes to timesheets Pay had processed or paid",
           _adjustment_rows, ADJUSTMENT_HEADER),
    _Table("holds.csv", "Records held back, why, and the conflicts they wait on", _hold_rows,
           HOLD_HEADER),
    _Table("quarantine.csv", "Records Assignar sent that failed validation, with the reason",
           _quarantine_rows, QUARANTINE_HEADER),
    _Table("sync_log.csv", "What each run did per connection and entity", _sync_log_rows,
           SYNC_LOG_HEADER),
    _Table("timesheets.csv", "Pay timesheets loaded from Assignar", _timesheet_rows,
           TIMESHEET_HEADER),
    _Table("timesheet_lines.csv", "Their lines: minutes, rate, amount and the rate's source",
           _line_rows, LINE_HEADER),
    _Table("orders.csv", "Pay orders (job costing) loaded from Assignar", _order_rows,
           ORDER_HEADER),
    _Table("order_lines.csv", "Their lines", _order_line_rows, ORDER_LINE_HEADER),
)  # fmt: skip

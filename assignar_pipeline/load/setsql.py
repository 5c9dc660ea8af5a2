"""The pieces the set-based loads share (timesheets in `timesheet_plan`, orders in `orders`):
the expressions SQLite and PostgreSQL spell differently, the link lookup, the session's plan
table, and statistics for tables the planner has never seen."""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from sqlalchemy.engine import Connection

# Each lookup is a subquery on a primary key or index, so the plan does not depend on the
# statistics of tables a first import has just filled (joins did, and went quadratic).
LINK = """(SELECT {column} FROM integration_link l
     WHERE l.connection_id = :connection_id AND l.entity = '{entity}'
       AND l.external_id = s.{key})"""


def sha256_hex(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode()).hexdigest()


def dialect_sql(conn: Connection) -> dict[str, str]:
    """The few expressions SQLite and PostgreSQL spell differently."""
    if conn.dialect.name == "postgresql":
        return {
            "sha": "encode(sha256(convert_to({}, 'UTF8')), 'hex')",
            "elapsed": ("CAST(floor(EXTRACT(EPOCH FROM (s.end_at - s.start_at)) / 60) AS INTEGER)"),
            "lines": (
                "CROSS JOIN LATERAL json_array_elements(CAST(s.lines AS json)) "
                "WITH ORDINALITY AS l(value, n)"
            ),
            "line_no": "l.n",
            "line_minutes": "COALESCE(CAST(l.value ->> 'minutes' AS BIGINT), 0)",
            "line_cost_code": "l.value ->> 'cost_code'",
            "line_ref": "CAST(l.value ->> 'ref' AS BIGINT)",
            "line_text": "l.value ->> '{}'",
            # A decimal's text (at most 2 places, not negative) as the integer of its cents.
            "cents": "CAST(CAST({} AS NUMERIC) * 100 AS BIGINT)",
            # Keeps the planner from pulling the rate and timesheet lookups up into the joins
            # on their results, where it evaluated them once per pair of rows.
            "fence": "OFFSET 0",
        }
    conn.connection.driver_connection.create_function(
        "pipeline_sha256", 1, sha256_hex, deterministic=True
    )
    # SQLite keeps instants as text 'YYYY-MM-DD HH:MM:SS[.ffffff]': whole seconds by strftime,
    # the fraction (if any) read as microseconds, so the floor matches Python's timedelta // 60.
    micros = (
        "(CAST(strftime('%s', {0}) AS INTEGER) * 1000000"
        " + CAST(substr(substr({0}, 21) || '000000', 1, 6) AS INTEGER))"
    )
    span = f"({micros.format('s.end_at')} - {micros.format('s.start_at')})"
    return {
        "sha": "pipeline_sha256({})",
        "elapsed": (
            f"CASE WHEN {span} >= 0 THEN {span} / 60000000 "
            f"ELSE -((59999999 - {span}) / 60000000) END"
        ),
        "lines": ", json_each(s.lines) AS l",
        "line_no": "(l.key + 1)",
        "line_minutes": "COALESCE(CAST(json_extract(l.value, '$.minutes') AS INTEGER), 0)",
        "line_cost_code": "json_extract(l.value, '$.cost_code')",
        "line_ref": "json_extract(l.value, '$.ref')",
        "line_text": "json_extract(l.value, '$.{}')",
        "cents": (
            "(CAST(substr({0}, 1, instr({0} || '.', '.') - 1) AS INTEGER) * 100"
            " + CAST(substr(substr({0}, instr({0} || '.', '.') + 1) || '00', 1, 2) AS INTEGER))"
        ),
        "fence": "LIMIT -1 OFFSET 0",  # the same for SQLite's query flattener
    }


def prepare(conn: Connection, plan: sa.Table) -> None:
    """The session's plan table, empty (a temporary table lives as long as the connection)."""
    conn.execute(sa.schema.CreateTable(plan, if_not_exists=True))
    conn.execute(plan.delete())


def analyze_never_analyzed(conn: Connection, tables: list[str]) -> None:
    """ANALYZE (PostgreSQL) the lookup tables the planner knows nothing about yet: without
    statistics it takes them for empty and picks an index that filters every rate."""
    if conn.dialect.name != "postgresql":
        return
    unknown = (
        conn.execute(
            sa.text(
                "SELECT relname FROM pg_class WHERE relname IN :names AND reltuples < 0"
            ).bindparams(sa.bindparam("names", expanding=True)),
            {"names": tables},
        )
        .scalars()
        .all()
    )
    if unknown:
        # Identifiers come from our own list, never from input.
        conn.exec_driver_sql(f"ANALYZE {', '.join(sorted(unknown))}")

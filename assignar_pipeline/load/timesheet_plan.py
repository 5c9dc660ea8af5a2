"""The set-based pass of the timesheet load: a window piece's clean timesheets, decided and
written by a few SQL statements instead of Python per record (DESIGN.md, "The data path is
columnar and set-based").

One statement classifies every staged timesheet of the piece into a temporary table, joining the
worker and project links, the Pay timesheet it loads into (and Pay's lock), Pay's rate (employee +
project, then employee, then project, then team default, effective on the work date) and
Assignar's rate. A row is clean when nothing about it needs a person or a conflict: approved and
linked, not locked in Pay, and Pay's rate agreeing with Assignar's (or either missing). Clean rows
are inserted, updated or left unchanged; rows that vanished or were unapproved are voided; rows
whose worker is deliberately not paid through Pay are ignored. Everything else (a missing link, a
lock, a rate that differs) is left to the per-record code in `timesheets.py`, which writes the
conflicts and holds, so their text is exactly what it was.

The hashes are the ones the per-record code computes (`common.source_hash_of`, `rates.price_hash`):
sha256 of the same strings, built in SQL. PostgreSQL has sha256; SQLite gets it as a function
registered on the connection (Python's hashlib, called by SQLite, one call per staged row);
`setsql` has these dialect pieces, shared with the orders load.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from assignar_pipeline.load.setsql import LINK, analyze_never_analyzed, dialect_sql, prepare
from assignar_pipeline.pay.tables import staging_timesheet
from assignar_pipeline.reconcile.rates import ORDINARY, RATE_UNIT

PLAN = "tmp_timesheet_plan"

_plan = sa.Table(
    PLAN,
    sa.MetaData(),
    sa.Column("assignar_id", sa.BigInteger, primary_key=True),
    sa.Column("total_minutes", sa.Integer, nullable=False),
    sa.Column("outcome", sa.String(10)),  # NULL: left to the per-record code
    sa.Column("action", sa.String(6)),  # insert | update | void | NULL (nothing to write)
    sa.Column("current_id", sa.Integer),  # the Pay timesheet it loads into
    sa.Column("employee_id", sa.Integer),
    sa.Column("project_id", sa.Integer),
    sa.Column("elapsed_minutes", sa.Integer),
    sa.Column("source_status", sa.String(60)),
    sa.Column("source_hash", sa.String(64)),
    sa.Column("price_hash", sa.String(64)),
    sa.Column("rate", sa.BigInteger),  # scaled like `pay_rate.rate`
    sa.Column("rate_source", sa.String(20)),
    sa.Column("pay_rate_id", sa.Integer),
    sa.Column("void_reason", sa.String(200)),
    prefixes=["TEMPORARY"],
)


@dataclass
class Planned:
    """What the set-based pass did: outcome → (records, minutes), Assignar id → outcome, and how
    many Pay timesheets it wrote. The rest waits in the plan for the per-record code."""

    totals: dict[str, tuple[int, int]]
    records: dict[int, str]
    written: int


_APPROVED = (
    "'APPROVED', 'APPROVED_WITH_PAY_RATES', 'APPROVED_WITH_CHARGE_RATES', "
    "'APPROVED_WITH_PAY_AND_CHARGE_RATES'"
)

# The most specific Pay rate effective on the work date, for one scope (PayRates.resolve).
_RATE_FOR = """(SELECT r.id FROM pay_rate r
     WHERE r.team_id = :team_id AND r.pay_code_id = :pay_code_id AND {scope}
       AND r.effective_from <= a.work_date
       AND (r.effective_to IS NULL OR a.work_date < r.effective_to)
     ORDER BY r.effective_from, r.id LIMIT 1)"""

_LINKS = {
    "worker_link": LINK.format(column="1", entity="worker", key="user_assignar_id"),
    "worker_pay_id": LINK.format(column="l.pay_id", entity="worker", key="user_assignar_id"),
    "project_link": LINK.format(column="1", entity="project", key="project_assignar_id"),
    "project_pay_id": LINK.format(column="l.pay_id", entity="project", key="project_assignar_id"),
}
_SCOPES = (
    "r.employee_id = a.employee_id AND r.project_id = a.project_id",
    "r.employee_id = a.employee_id AND r.project_id IS NULL",
    "r.employee_id IS NULL AND r.project_id = a.project_id",
    "r.employee_id IS NULL AND r.project_id IS NULL",
)

_CLASSIFY = """
INSERT INTO {plan} (assignar_id, total_minutes, outcome, action, current_id, employee_id,
                    project_id, elapsed_minutes, source_status, source_hash, price_hash, rate,
                    rate_source, pay_rate_id, void_reason)
SELECT d.assignar_id, d.total_minutes, d.outcome,
       CASE WHEN d.outcome = 'inserted' THEN 'insert'
            WHEN d.outcome = 'updated' THEN 'update'
            WHEN d.approved = 0 AND d.outcome IS NOT NULL AND d.current_id IS NOT NULL
                 AND d.current_status <> 'void' THEN 'void' END,
       d.current_id, d.employee_id, d.project_id, d.elapsed_minutes, d.source_status,
       d.source_hash, d.price_hash, d.rate, d.rate_source, d.pay_rate_id, d.void_reason
FROM (
  SELECT m.*,
    CASE
      WHEN m.approved = 0 THEN
        CASE WHEN m.locked = 1 AND m.current_status <> 'void' THEN NULL
             WHEN m.deleted = 1 THEN 'voided' ELSE 'ignored' END
      WHEN m.worker_linked IS NULL THEN NULL
      WHEN m.employee_id IS NULL THEN 'ignored'
      WHEN m.project_assignar_id IS NOT NULL AND m.project_linked IS NULL THEN NULL
      WHEN m.locked = 1 THEN NULL
      WHEN m.rate_needs_look = 1 THEN NULL
      WHEN m.current_id IS NULL THEN 'inserted'
      WHEN m.source_hash = m.current_source_hash AND m.price_hash = m.current_price_hash
           AND m.current_status <> 'void' THEN 'unchanged'
      ELSE 'updated'
    END AS outcome
  FROM (
    SELECT b.*,
      t.status AS current_status,
      t.source_hash AS current_source_hash, t.price_hash AS current_price_hash,
      CASE WHEN t.id IS NOT NULL AND (t.locked_at IS NOT NULL
                                      OR t.status IN ('processed', 'paid'))
           THEN 1 ELSE 0 END AS locked,
      pr.rate AS rate,
      CASE WHEN pr.id IS NULL THEN NULL
           WHEN pr.employee_id IS NOT NULL AND pr.project_id IS NOT NULL THEN 'employee_project'
           WHEN pr.employee_id IS NOT NULL THEN 'employee'
           WHEN pr.project_id IS NOT NULL THEN 'project'
           ELSE 'team' END AS rate_source,
      CASE WHEN pr.id IS NOT NULL AND b.assignar_rate IS NOT NULL
                AND abs(b.assignar_rate - pr.rate) > :tolerance THEN 1
           WHEN pr.rate < 0 THEN 1
           ELSE 0 END AS rate_needs_look,
      {source_hash} AS source_hash,
      {price_hash} AS price_hash
    FROM (
      SELECT a.*,
        (SELECT max(t.id) FROM timesheet t WHERE t.source_connection_id = :connection_id
           AND t.source_external_id = a.assignar_id) AS current_id,
        {rate_ids} AS pay_rate_id
      FROM (
        SELECT s.assignar_id, s.total_minutes, s.content_hash, s.project_assignar_id,
          s.work_date,
          CASE WHEN s.voided_at IS NOT NULL THEN 1 ELSE 0 END AS deleted,
          CASE WHEN s.voided_at IS NULL AND s.status IN ({approved}) THEN 1 ELSE 0
          END AS approved,
          CASE WHEN s.voided_at IS NOT NULL THEN 'deleted in Assignar'
               ELSE s.status || ' in Assignar' END AS void_reason,
          s.status || CASE WHEN s.processed THEN ' (processed)' ELSE '' END AS source_status,
          {elapsed} AS elapsed_minutes,
          {worker_link} AS worker_linked, {worker_pay_id} AS employee_id,
          {project_link} AS project_linked, {project_pay_id} AS project_id,
          ar.rate AS assignar_rate
        FROM staging_timesheet s
        LEFT JOIN assignar_rate ar ON ar.connection_id = :connection_id
             AND ar.task_assignar_id = s.task_assignar_id AND ar.pay_code = :pay_code
        WHERE s.connection_id = :connection_id AND s.work_date >= :first AND s.work_date < :end
        {fence}
      ) a
      {fence}
    ) b
    LEFT JOIN timesheet t ON t.id = b.current_id
    LEFT JOIN pay_rate pr ON pr.id = b.pay_rate_id
  ) m
) d
"""

# rates.price_hash((pay_code_id, str(rate), rate_source, pay_rate_id, resolution_id)): the repr
# of that tuple, with the rate written as Decimal writes a 4-place value ('44.8000').
_PRICE_TEXT = (
    "'(' || :pay_code_text || ', ''' || "
    "COALESCE(CAST(pr.rate / 10000 AS TEXT) || '.' || "
    "substr(CAST(10000 + pr.rate % 10000 AS TEXT), 2), 'None') || ''', ' || "
    "COALESCE('''' || ({scope}) || '''', 'None') || ', ' || "
    "COALESCE(CAST(pr.id AS TEXT), 'None') || ', None)'"
)
_SCOPE = (
    "CASE WHEN pr.id IS NULL THEN NULL "
    "WHEN pr.employee_id IS NOT NULL AND pr.project_id IS NOT NULL THEN 'employee_project' "
    "WHEN pr.employee_id IS NOT NULL THEN 'employee' "
    "WHEN pr.project_id IS NOT NULL THEN 'project' ELSE 'team' END"
)
# common.source_hash_of: f"{content_hash}:{(employee pay id, project pay id)}".
_SOURCE_TEXT = (
    "b.content_hash || ':(' || CAST(b.employee_id AS TEXT) || ', ' || "
    "COALESCE(CAST(b.project_id AS TEXT), 'None') || ')'"
)

_INSERT = """
INSERT INTO timesheet (team_id, employee_id, project_id, work_date, start_at, end_at, timezone,
                       elapsed_minutes, payable_minutes, status, source_connection_id,
                       source_external_id, source_status, source_modified_at, source_hash,
                       source_version, price_hash)
SELECT :team_id, p.employee_id, p.project_id, s.work_date, s.start_at, s.end_at, s.timezone,
       p.elapsed_minutes, s.total_minutes, 'imported', :connection_id, p.assignar_id,
       p.source_status, s.modified_time, p.source_hash, 1, p.price_hash
FROM {plan} p
JOIN staging_timesheet s ON s.connection_id = :connection_id AND s.assignar_id = p.assignar_id
WHERE p.action = 'insert'
ORDER BY p.assignar_id
"""

# Pay's lock is checked again in SQL, as the per-record writes do.
_UPDATE = """
UPDATE timesheet SET employee_id = p.employee_id, project_id = p.project_id,
  work_date = s.work_date, start_at = s.start_at, end_at = s.end_at, timezone = s.timezone,
  elapsed_minutes = p.elapsed_minutes, payable_minutes = s.total_minutes, status = 'imported',
  void_reason = NULL, source_status = p.source_status, source_modified_at = s.modified_time,
  source_hash = p.source_hash, price_hash = p.price_hash,
  source_version = timesheet.source_version + 1
FROM {plan} p
JOIN staging_timesheet s ON s.connection_id = :connection_id AND s.assignar_id = p.assignar_id
WHERE timesheet.id = p.current_id AND p.action = 'update' AND timesheet.locked_at IS NULL
"""

_VOID = """
UPDATE timesheet SET status = 'void', void_reason = p.void_reason
FROM {plan} p
WHERE timesheet.id = p.current_id AND p.action = 'void'
"""

_DELETE_LINES = """
DELETE FROM timesheet_line
WHERE timesheet_id IN (SELECT current_id FROM {plan} WHERE action = 'update')
"""

# rates.amount: minutes × rate / 60 rounded half-up to cents; the rate has 4 places, so in
# integers cents = minutes × scaled rate / 6000, rounded half away from zero.
_INSERT_LINES = """
INSERT INTO timesheet_line (timesheet_id, line_no, cost_code, minutes, source_item_ref,
                            pay_code_id, rate, amount, rate_source, pay_rate_id, resolution_id)
SELECT t.id, x.line_no, x.cost_code, x.minutes, x.ref,
       CASE WHEN x.rate IS NULL THEN NULL ELSE CAST(:pay_code_id AS INTEGER) END, x.rate,
       CASE WHEN x.rate IS NULL THEN NULL
            WHEN x.minutes * x.rate >= 0 THEN (x.minutes * x.rate + 3000) / 6000
            ELSE -((3000 - x.minutes * x.rate) / 6000) END,
       x.rate_source, x.pay_rate_id, NULL
FROM (
  SELECT p.assignar_id, p.rate, p.rate_source, p.pay_rate_id,
         {line_no} AS line_no, {line_cost_code} AS cost_code, {line_minutes} AS minutes,
         {line_ref} AS ref
  FROM {plan} p
  JOIN staging_timesheet s ON s.connection_id = :connection_id AND s.assignar_id = p.assignar_id
  {lines}
  WHERE p.action IN ('insert', 'update')
) x
JOIN timesheet t ON t.source_connection_id = :connection_id
     AND t.source_external_id = x.assignar_id
ORDER BY t.id, x.line_no
"""


def plan_and_write(
    conn: Connection,
    connection: Any,
    window: tuple[date, date],
    pay_code_id: int | None,
    tolerance: Decimal,
) -> Planned:
    """Classify the window piece's staged timesheets, write the clean ones, and say what is left
    for the per-record code."""
    prepare(conn, _plan)
    analyze_never_analyzed(conn, ["pay_rate", "integration_link", "timesheet"])
    sql = dialect_sql(conn)
    source_hash = sql["sha"].format(_SOURCE_TEXT)
    price_hash = sql["sha"].format(_PRICE_TEXT.format(scope=_SCOPE))
    rate_ids = ", ".join(_RATE_FOR.format(scope=scope) for scope in _SCOPES)
    classify = _CLASSIFY.format(
        plan=PLAN,
        approved=_APPROVED,
        elapsed=sql["elapsed"],
        fence=sql["fence"],
        **_LINKS,
        # A team without the ordinary pay code has no rates to look up (SQLite wants
        # COALESCE to have two arguments at least).
        rate_ids=f"COALESCE({rate_ids})" if pay_code_id is not None else "CAST(NULL AS INTEGER)",
        source_hash=source_hash,
        price_hash=price_hash,
    )
    # A rate differs when |Assignar − Pay| > tolerance; both are integers of RATE_UNIT.
    tolerance_units = int((tolerance / RATE_UNIT).to_integral_value(rounding="ROUND_FLOOR"))
    params = {
        "connection_id": connection.id,
        "team_id": connection.team_id,
        "pay_code_id": pay_code_id,
        "pay_code_text": str(pay_code_id),
        "pay_code": ORDINARY,
        "tolerance": tolerance_units,
        "first": window[0],
        "end": window[1],
    }
    dates = (sa.bindparam("first", type_=sa.Date), sa.bindparam("end", type_=sa.Date))
    conn.execute(sa.text(classify).bindparams(*dates), params)
    decided = _plan.c.outcome.is_not(None)
    totals = {
        outcome: (int(n), int(minutes or 0))
        for outcome, n, minutes in conn.execute(
            sa.select(_plan.c.outcome, sa.func.count(), sa.func.sum(_plan.c.total_minutes))
            .where(decided)
            .group_by(_plan.c.outcome)
        )
    }
    records = dict(
        conn.execute(sa.select(_plan.c.assignar_id, _plan.c.outcome).where(decided)).all()
    )
    ids = {"connection_id": connection.id, "team_id": connection.team_id}
    written = 0
    if totals.get("voided") or totals.get("ignored"):
        conn.execute(sa.text(_VOID.format(plan=PLAN)))
    if totals.get("updated"):
        written += conn.execute(sa.text(_UPDATE.format(plan=PLAN)), ids).rowcount
        conn.execute(sa.text(_DELETE_LINES.format(plan=PLAN)))
    if totals.get("inserted"):
        written += conn.execute(sa.text(_INSERT.format(plan=PLAN)), ids).rowcount
    if totals.get("updated") or totals.get("inserted"):
        conn.execute(
            sa.text(_INSERT_LINES.format(plan=PLAN, **sql)),
            {"connection_id": connection.id, "pay_code_id": pay_code_id},
        )
    return Planned(totals, records, written)


def remaining_staged(conn: Connection, connection_id: int) -> list[Any]:
    """The staged rows the plan left to the per-record code, by Assignar id."""
    return conn.execute(
        sa.select(staging_timesheet)
        .join(_plan, _plan.c.assignar_id == staging_timesheet.c.assignar_id)
        .where(staging_timesheet.c.connection_id == connection_id, _plan.c.outcome.is_(None))
        .order_by(staging_timesheet.c.assignar_id)
    ).all()


def clear(conn: Connection) -> None:
    conn.execute(_plan.delete())

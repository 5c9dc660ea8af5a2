"""Confirmed orders into Pay's job costing (pay_order, pay_order_line), by set-based SQL.

One statement classifies a window piece's staged orders into a temporary plan, joining the
project link and the Pay order each loads into: an order on a linked project (or on none) is
inserted, updated (its lines replaced) or left unchanged by its source hash; one deleted in
Assignar voids its Pay order. A few statements then write the plan. Only the orders whose project
is not linked are left to Python, which holds them with the Duplicate Project conflict they wait
on (the exception, and its text is per record).

The source hash is the one the timesheets use (`common.source_hash_of` with no worker), built in
SQL with the dialect pieces of `setsql`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from assignar_pipeline.load.common import OUTCOMES, LoadCounts, finish_load, has_feature
from assignar_pipeline.load.setsql import LINK, analyze_never_analyzed, dialect_sql, prepare
from assignar_pipeline.pay.tables import pay_order, pay_order_line, staging_order
from assignar_pipeline.reconcile.conflicts import (
    DUPLICATE_PROJECT,
    KIND_LABELS,
    ConflictBook,
    Hold,
    short,
)
from assignar_pipeline.staging import refresh_statistics

PLAN = "tmp_order_plan"

_plan = sa.Table(
    PLAN,
    sa.MetaData(),
    sa.Column("assignar_id", sa.BigInteger, primary_key=True),
    sa.Column("outcome", sa.String(10)),  # NULL: held, by the Python below
    sa.Column("action", sa.String(6)),  # insert | update | void | NULL (nothing to write)
    sa.Column("current_id", sa.Integer),  # the Pay order it loads into
    sa.Column("project_id", sa.Integer),
    sa.Column("source_hash", sa.String(64)),
    prefixes=["TEMPORARY"],
)

_CLASSIFY = """
INSERT INTO {plan} (assignar_id, outcome, action, current_id, project_id, source_hash)
SELECT d.assignar_id, d.outcome,
       CASE WHEN d.outcome = 'inserted' THEN 'insert'
            WHEN d.outcome = 'updated' THEN 'update'
            WHEN d.outcome = 'voided' AND d.current_id IS NOT NULL AND d.current_voided = 0
                 THEN 'void' END,
       d.current_id, d.project_id, d.source_hash
FROM (
  SELECT c.*,
    CASE WHEN c.deleted = 1 THEN 'voided'
         WHEN c.clean = 0 THEN NULL
         WHEN c.current_id IS NULL THEN 'inserted'
         WHEN c.source_hash = c.current_source_hash AND c.current_voided = 0 THEN 'unchanged'
         ELSE 'updated'
    END AS outcome
  FROM (
    SELECT b.*, o.id AS current_id, o.source_hash AS current_source_hash,
      CASE WHEN o.voided THEN 1 ELSE 0 END AS current_voided,
      CASE WHEN b.clean = 1 THEN {source_hash} END AS source_hash
    FROM (
      SELECT a.*,
        CASE WHEN a.deleted = 0 AND (a.project_assignar_id IS NULL OR a.project_linked IS NOT NULL)
             THEN 1 ELSE 0 END AS clean
      FROM (
        SELECT s.assignar_id, s.content_hash, s.project_assignar_id,
          CASE WHEN s.voided_at IS NOT NULL THEN 1 ELSE 0 END AS deleted,
          {project_link} AS project_linked, {project_pay_id} AS project_id
        FROM staging_order s
        WHERE s.connection_id = :connection_id AND s.work_date >= :first AND s.work_date < :end
        {fence}
      ) a
    ) b
    LEFT JOIN pay_order o ON o.source_connection_id = :connection_id
         AND o.source_external_id = b.assignar_id
  ) c
) d
"""

# common.source_hash_of(staged, None, project link): f"{content_hash}:{(None, project pay id)}".
_SOURCE_TEXT = "b.content_hash || ':(None, ' || COALESCE(CAST(b.project_id AS TEXT), 'None') || ')'"

_INSERT = """
INSERT INTO pay_order (team_id, project_id, order_number, po_number, status, start_date,
                       end_date, description, voided, source_connection_id, source_external_id,
                       source_hash)
SELECT :team_id, p.project_id, s.job_number, s.po_number,
       'assignar-status-' || CAST(s.status_id AS TEXT), s.work_date, s.end_date, s.description,
       FALSE, :connection_id, p.assignar_id, p.source_hash
FROM {plan} p
JOIN staging_order s ON s.connection_id = :connection_id AND s.assignar_id = p.assignar_id
WHERE p.action = 'insert'
ORDER BY p.assignar_id
"""

_UPDATE = """
UPDATE pay_order SET team_id = :team_id, project_id = p.project_id, order_number = s.job_number,
  po_number = s.po_number, status = 'assignar-status-' || CAST(s.status_id AS TEXT),
  start_date = s.work_date, end_date = s.end_date, description = s.description, voided = FALSE,
  source_hash = p.source_hash
FROM {plan} p
JOIN staging_order s ON s.connection_id = :connection_id AND s.assignar_id = p.assignar_id
WHERE pay_order.id = p.current_id AND p.action = 'update'
"""

_VOID = """
UPDATE pay_order SET voided = TRUE
FROM {plan} p
WHERE pay_order.id = p.current_id AND p.action = 'void'
"""

_DELETE_LINES = """
DELETE FROM pay_order_line
WHERE order_id IN (SELECT current_id FROM {plan} WHERE action = 'update')
"""

# A line's quantity is staged as its "51.00" text, or null (then 0), like the per-record load
# wrote it (`line.get("quantity") or "0"`).
_INSERT_LINES = """
INSERT INTO pay_order_line (order_id, line_no, cost_code, description, quantity, unit)
SELECT o.id, x.line_no, x.cost_code, x.description, x.quantity, x.unit
FROM (
  SELECT p.assignar_id, {line_no} AS line_no, {cost_code} AS cost_code,
         {description} AS description, {quantity} AS quantity, {unit} AS unit
  FROM {plan} p
  JOIN staging_order s ON s.connection_id = :connection_id AND s.assignar_id = p.assignar_id
  {lines}
  WHERE p.action IN ('insert', 'update')
) x
JOIN pay_order o ON o.source_connection_id = :connection_id
     AND o.source_external_id = x.assignar_id
ORDER BY o.id, x.line_no
"""


def load_orders(
    conn: Connection, connection: Any, now: datetime, window: tuple[date, date]
) -> LoadCounts:
    """Confirmed orders into Pay's job costing, for teams that have it and asked for orders."""
    counts = LoadCounts()
    in_window = (
        staging_order.c.connection_id == connection.id,
        staging_order.c.work_date >= window[0],
        staging_order.c.work_date < window[1],
    )
    if not (connection.import_orders and has_feature(conn, connection.team_id, "job_costing")):
        staged = conn.execute(
            sa.select(sa.func.count()).select_from(staging_order).where(*in_window)
        ).scalar_one()
        if staged:
            counts.add("ignored", staged, 0)
        return counts
    book = ConflictBook(conn, connection.id, now)
    totals = _plan_and_write(conn, connection, window)
    for outcome in OUTCOMES:
        if totals.get(outcome):
            counts.add(outcome, totals[outcome], 0)
    held = conn.execute(
        sa.select(
            staging_order.c.assignar_id,
            staging_order.c.project_assignar_id,
            staging_order.c.work_date,
        )
        .join(_plan, _plan.c.assignar_id == staging_order.c.assignar_id)
        .where(*in_window, _plan.c.outcome.is_(None))
        .order_by(staging_order.c.assignar_id)
    ).all()
    conn.execute(_plan.delete())
    holds: dict[int, Hold] = {}
    project_conflicts = book.open_by_subject(DUPLICATE_PROJECT) if held else {}
    for staged in held:
        cid = project_conflicts.get(staged.project_assignar_id)
        holds[staged.assignar_id] = Hold(
            f"project {staged.project_assignar_id}: {KIND_LABELS[DUPLICATE_PROJECT]} {short(cid)}"
            if cid
            else f"project {staged.project_assignar_id} is not matched to a Pay project",
            staged.work_date,
            (cid,) if cid else (),
        )
        counts.count("held")
    finish_load(conn, connection, "order", book, holds, counts, now, window)
    return counts


def _plan_and_write(conn: Connection, connection: Any, window: tuple[date, date]) -> dict:
    """Classify the window piece's staged orders into the plan and write the clean ones;
    returns the records per outcome (the held ones stay in the plan with no outcome)."""
    prepare(conn, _plan)
    analyze_never_analyzed(conn, ["integration_link", "pay_order"])
    sql = dialect_sql(conn)
    classify = _CLASSIFY.format(
        plan=PLAN,
        project_link=LINK.format(column="1", entity="project", key="project_assignar_id"),
        project_pay_id=LINK.format(column="l.pay_id", entity="project", key="project_assignar_id"),
        source_hash=sql["sha"].format(_SOURCE_TEXT),
        fence=sql["fence"],
    )
    ids = {"connection_id": connection.id, "team_id": connection.team_id}
    dates = (sa.bindparam("first", type_=sa.Date), sa.bindparam("end", type_=sa.Date))
    conn.execute(
        sa.text(classify).bindparams(*dates), {**ids, "first": window[0], "end": window[1]}
    )
    totals = {
        outcome: int(n)
        for outcome, n in conn.execute(
            sa.select(_plan.c.outcome, sa.func.count())
            .where(_plan.c.outcome.is_not(None))
            .group_by(_plan.c.outcome)
        )
    }
    written = 0
    if totals.get("voided"):
        conn.execute(sa.text(_VOID.format(plan=PLAN)))
    if totals.get("updated"):
        written += conn.execute(sa.text(_UPDATE.format(plan=PLAN)), ids).rowcount
        conn.execute(sa.text(_DELETE_LINES.format(plan=PLAN)))
    if totals.get("inserted"):
        written += conn.execute(sa.text(_INSERT.format(plan=PLAN)), ids).rowcount
    if written:
        quantity = "COALESCE(NULLIF(CAST({} AS TEXT), ''), '0')".format(
            sql["line_text"].format("quantity")
        )
        conn.execute(
            sa.text(
                _INSERT_LINES.format(
                    plan=PLAN,
                    lines=sql["lines"],
                    line_no=sql["line_no"],
                    cost_code=sql["line_text"].format("cost_code"),
                    description=sql["line_text"].format("description"),
                    unit=sql["line_text"].format("unit"),
                    quantity=sql["cents"].format(quantity),
                )
            ),
            ids,
        )
    refresh_statistics(conn, [pay_order, pay_order_line], written)
    return totals

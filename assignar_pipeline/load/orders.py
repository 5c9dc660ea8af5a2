"""Confirmed orders into Pay's job costing (pay_order, pay_order_line)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from sqlalchemy.engine import Connection

from assignar_pipeline.load.common import (
    LoadCounts,
    existing_by_source,
    finish_load,
    has_feature,
    read_staged,
    source_hash_of,
)
from assignar_pipeline.pay.tables import pay_order, pay_order_line
from assignar_pipeline.reconcile.conflicts import (
    DUPLICATE_PROJECT,
    KIND_LABELS,
    ConflictBook,
    Hold,
    short,
)
from assignar_pipeline.reconcile.links import links


def load_orders(
    conn: Connection, connection: Any, now: datetime, window: tuple[date, date]
) -> LoadCounts:
    """Confirmed orders into Pay's job costing, for teams that have it and asked for orders."""
    counts = LoadCounts()
    staged_rows = read_staged(conn, "orders", connection.id, window)
    if not (connection.import_orders and has_feature(conn, connection.team_id, "job_costing")):
        for _ in staged_rows:
            counts.count("ignored")
        return counts
    book = ConflictBook(conn, connection.id, now)
    project_conflicts = book.open_by_subject(DUPLICATE_PROJECT)
    projects = links(conn, connection.id, "project")
    existing = existing_by_source(
        conn, pay_order, connection.id, [s.assignar_id for s in staged_rows]
    )
    holds: dict[int, Hold] = {}
    for staged in staged_rows:
        current = existing.get(staged.assignar_id)
        if staged.voided_at is not None:
            if current is not None and not current.voided:
                conn.execute(
                    pay_order.update().where(pay_order.c.id == current.id).values(voided=True)
                )
            counts.count("voided")
            continue
        project_link = projects.get(staged.project_assignar_id)
        if staged.project_assignar_id is not None and project_link is None:
            cid = project_conflicts.get(staged.project_assignar_id)
            holds[staged.assignar_id] = Hold(
                f"project {staged.project_assignar_id}: {KIND_LABELS[DUPLICATE_PROJECT]} "
                f"{short(cid)}"
                if cid
                else f"project {staged.project_assignar_id} is not matched to a Pay project",
                staged.work_date,
                (cid,) if cid else (),
            )
            counts.count("held")
            continue
        values = {
            "team_id": connection.team_id,
            "project_id": project_link.pay_id if project_link is not None else None,
            "order_number": staged.job_number,
            "po_number": staged.po_number,
            "status": f"assignar-status-{staged.status_id}",
            "start_date": staged.work_date,
            "end_date": staged.end_date,
            "description": staged.description,
            "voided": False,
            "source_connection_id": connection.id,
            "source_external_id": staged.assignar_id,
            "source_hash": source_hash_of(staged, None, project_link),
        }
        if current is None:
            pay_id = conn.execute(
                pay_order.insert().values(values).returning(pay_order.c.id)
            ).scalar_one()
            _write_order_lines(conn, pay_id, staged.lines)
            counts.count("inserted")
        elif current.source_hash == values["source_hash"] and not current.voided:
            counts.count("unchanged")
        else:
            conn.execute(pay_order.update().where(pay_order.c.id == current.id).values(values))
            conn.execute(pay_order_line.delete().where(pay_order_line.c.order_id == current.id))
            _write_order_lines(conn, current.id, staged.lines)
            counts.count("updated")
    finish_load(conn, connection, "order", book, holds, counts, now, window)
    return counts


def _write_order_lines(conn: Connection, order_id: int, lines: Iterable[dict]) -> None:
    rows = [
        {
            "order_id": order_id,
            "line_no": number,
            "cost_code": line.get("cost_code"),
            "description": line.get("description"),
            "quantity": line.get("quantity") or "0",
            "unit": line.get("unit"),
        }
        for number, line in enumerate(lines, start=1)
    ]
    if rows:
        conn.execute(pay_order_line.insert(), rows)

"""Assignar workers linked to Pay employees by a certain key, or held on a Worker Mismatch
conflict; Pay's employees are never overwritten."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from assignar_pipeline.load.common import LoadCounts, finish_load, read_staged
from assignar_pipeline.pay.tables import employee
from assignar_pipeline.reconcile.conflicts import (
    KIND_LABELS,
    WORKER_MISMATCH,
    ConflictBook,
    Hold,
    conflict_id,
    short,
)
from assignar_pipeline.reconcile.links import links, write_link
from assignar_pipeline.reconcile.matching import PayEmployee, WorkerFacts, match_worker
from assignar_pipeline.reconcile.normalize import norm_email
from assignar_pipeline.reconcile.policy import thresholds_for


def load_workers(
    conn: Connection, connection: Any, now: datetime, window: None = None
) -> LoadCounts:
    """Link each staged worker to a Pay employee by a certain key, or hold it on a Worker
    Mismatch conflict listing the closest Pay employees. Pay's employees are never overwritten."""
    counts = LoadCounts()
    limits = thresholds_for(conn, connection.id)
    book = ConflictBook(conn, connection.id, now)
    linked = links(conn, connection.id, "worker")
    employees = [
        PayEmployee(e.id, e.employee_number, e.first_name, e.last_name, e.email, e.dob, e.status)
        for e in conn.execute(
            sa.select(employee)
            .where(employee.c.team_id == connection.team_id)
            .order_by(employee.c.id)
        )
    ]
    known = {e.id for e in employees}
    staged_rows = [s for s in read_staged(conn, "workers", connection.id) if s.voided_at is None]
    staged_emails: dict[str, int] = {}
    for s in staged_rows:
        email = norm_email(s.email)
        if email:
            staged_emails[email] = staged_emails.get(email, 0) + 1
    holds: dict[int, Hold] = {}
    for staged in staged_rows:
        if staged.assignar_id in linked:
            counts.count("unchanged")
            continue
        fingerprint = f"worker:{staged.assignar_id}"
        resolution = book.resolution(conflict_id(connection.id, WORKER_MISMATCH, fingerprint))
        if resolution is not None and (
            resolution.decision == "ignore" or resolution.target_pay_id in known
        ):
            pay_id = None if resolution.decision == "ignore" else resolution.target_pay_id
            rule = {"map": "resolution_map", "ignore": "ignored"}.get(
                resolution.decision, "resolution_create"
            )
            write_link(
                conn, connection.id, "worker", staged.assignar_id, pay_id, rule, resolution.id
            )
            counts.count("linked")
            continue
        facts = WorkerFacts(
            staged.assignar_id,
            staged.employee_id,
            staged.first_name,
            staged.last_name,
            staged.email,
            staged.dob,
        )
        match = match_worker(facts, employees, staged_emails, limits.worker_name)
        if match.linked:
            write_link(conn, connection.id, "worker", staged.assignar_id, match.pay_id, match.rule)
            counts.count("linked")
            continue
        name = f"{staged.first_name} {staged.last_name}"
        row = book.observe(
            WORKER_MISMATCH,
            fingerprint,
            subject_entity="worker",
            subject_external_id=staged.assignar_id,
            summary=f"Assignar worker {name} ({staged.employee_id or 'no employee id'}): "
            f"{match.reason}",
            details={
                "assignar": {
                    "id": staged.assignar_id,
                    "employee_id": staged.employee_id,
                    "name": name,
                    "email": staged.email,
                    "dob": staged.dob.isoformat() if staged.dob else None,
                    "active": staged.active,
                },
                "reason": match.reason,
            },
            candidates=list(match.candidates),
        )
        holds[staged.assignar_id] = Hold(
            f"worker {staged.assignar_id} {name}: {KIND_LABELS[WORKER_MISMATCH]} "
            f"{short(row.id)} ({match.reason})",
            None,
            (row.id,),
        )
        counts.count("held")
    book.supersede_unseen([WORKER_MISMATCH])
    finish_load(conn, connection, "worker", book, holds, counts, now)
    return counts

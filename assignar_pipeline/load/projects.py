"""Assignar projects into Pay: linked by a certain key, created, or held on a Duplicate Project
conflict with the candidates."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from assignar_pipeline.load.common import LoadCounts, finish_load, read_staged
from assignar_pipeline.pay.tables import project
from assignar_pipeline.reconcile.conflicts import (
    DUPLICATE_PROJECT,
    KIND_LABELS,
    ConflictBook,
    Hold,
    conflict_id,
    short,
)
from assignar_pipeline.reconcile.links import PayClients, links, write_link
from assignar_pipeline.reconcile.matching import PayProject, ProjectFacts, match_project
from assignar_pipeline.reconcile.policy import thresholds_for


def project_values(staged: Any, clients: PayClients) -> dict[str, Any]:
    """The Pay project fields Assignar decides for a project Assignar created."""
    return {
        "name": staged.name,
        "status": "active" if staged.active else "completed",
        "client_id": clients.ensure(staged),
    }


def load_projects(
    conn: Connection, connection: Any, now: datetime, window: None = None
) -> LoadCounts:
    """Link or create a Pay project for each staged Assignar project; hold possible duplicates
    on a Duplicate Project conflict with the candidates."""
    counts = LoadCounts()
    limits = thresholds_for(conn, connection.id)
    book = ConflictBook(conn, connection.id, now)
    linked = links(conn, connection.id, "project")
    clients = PayClients(conn, connection)
    pay_rows = conn.execute(sa.select(project).where(project.c.team_id == connection.team_id)).all()
    by_id = {p.id: p for p in pay_rows}
    pay_projects = [_pay_project(p, clients) for p in pay_rows]
    holds: dict[int, Hold] = {}
    undecided: list[tuple[Any, ProjectFacts]] = []
    for staged in read_staged(conn, "projects", connection.id):
        if staged.voided_at is not None:
            continue  # deleted in Assignar: Pay keeps its project and the link
        link = linked.get(staged.assignar_id)
        if link is not None:
            current = by_id.get(link.pay_id)
            # Only the Assignar project that created a Pay project keeps it up to date: one
            # linked by code or merged into it (several may be) never overwrites it.
            if (
                current is not None
                and current.origin == "assignar"
                and link.match_rule == "created"
            ):
                values = project_values(staged, clients)
                if any(getattr(current, k) != v for k, v in values.items()):
                    conn.execute(project.update().where(project.c.id == current.id).values(values))
                    counts.count("updated")
                    continue
            counts.count("unchanged")
            continue
        fingerprint = f"project:{staged.assignar_id}"
        resolution = book.resolution(conflict_id(connection.id, DUPLICATE_PROJECT, fingerprint))
        if resolution is not None and resolution.target_pay_id in by_id:
            rule = "resolution_merge" if resolution.decision == "merge" else "resolution_create"
            write_link(
                conn,
                connection.id,
                "project",
                staged.assignar_id,
                resolution.target_pay_id,
                rule,
                resolution.id,
            )
            counts.count("linked")
            continue
        facts = ProjectFacts(
            staged.assignar_id, staged.name, staged.code, staged.client_name, clients.find(staged)
        )
        match = match_project(facts, pay_projects, limits.project_name)
        if match.linked:
            write_link(conn, connection.id, "project", staged.assignar_id, match.pay_id, match.rule)
            counts.count("linked")
        elif match.candidates:
            undecided.append((staged, facts))
        else:
            values = project_values(staged, clients)
            pay_id = conn.execute(
                project.insert()
                .values(team_id=connection.team_id, code=staged.code, origin="assignar", **values)
                .returning(project.c.id)
            ).scalar_one()
            write_link(conn, connection.id, "project", staged.assignar_id, pay_id, "created")
            created = conn.execute(sa.select(project).where(project.c.id == pay_id)).one()
            by_id[pay_id] = created
            pay_projects.append(_pay_project(created, clients))
            counts.count("inserted")
    # Decided against every project this pass created too (one created after a project was met
    # may be its exact code): the next sync then decides exactly the same.
    for staged, facts in undecided:
        match = match_project(facts, pay_projects, limits.project_name)
        if match.linked:
            write_link(conn, connection.id, "project", staged.assignar_id, match.pay_id, match.rule)
            counts.count("linked")
            continue
        row = book.observe(
            DUPLICATE_PROJECT,
            f"project:{staged.assignar_id}",
            subject_entity="project",
            subject_external_id=staged.assignar_id,
            summary=(
                f"Assignar project {staged.name!r} ({staged.code or 'no code'}) may be Pay's "
                f"{match.candidates[0]['name']!r} (#{match.candidates[0]['pay_id']}): "
                f"{match.reason}"
            ),
            details={
                "assignar": {
                    "id": staged.assignar_id,
                    "name": staged.name,
                    "code": staged.code,
                    "client": staged.client_name,
                    "client_code": staged.client_code,
                    "active": staged.active,
                },
                "reason": match.reason,
            },
            candidates=list(match.candidates),
        )
        holds[staged.assignar_id] = Hold(
            f"project {staged.assignar_id} {staged.name!r}: "
            f"{KIND_LABELS[DUPLICATE_PROJECT]} {short(row.id)} ({match.reason})",
            None,
            (row.id,),
        )
        counts.count("held")
    book.supersede_unseen([DUPLICATE_PROJECT])
    finish_load(conn, connection, "project", book, holds, counts, now)
    return counts


def _pay_project(p: Any, clients: PayClients) -> PayProject:
    return PayProject(p.id, p.name, p.code, p.client_id, clients.names.get(p.client_id), p.status)

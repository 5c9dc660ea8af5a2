"""Reconciliation scenarios: the demo synced once per engine, a fresh copy for each test, and
short ways to find conflicts, holds and Pay rows."""

from __future__ import annotations

import shutil
import sqlite3
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from click.testing import CliRunner, Result
from psycopg2 import sql
from sqlalchemy.engine import Engine

from assignar_pipeline.cli import main
from assignar_pipeline.pay import tables as t
from tests.support.pipeline import Pipeline

OWNER = "priya.raman@example.com"  # owner: every permission
ADMIN = "tom.becker@example.com"  # admin: no rates.edit


@dataclass(frozen=True)
class Snapshot:
    """A Pay database after the demo's first sync, to copy from."""

    kind: str  # sqlite | postgresql
    url: str
    name: str  # file path (SQLite) or database name (PostgreSQL)


def copy_snapshot(snapshot: Snapshot, postgres: Any, tmp_path: Path, name: str) -> str:
    """A new database with the snapshot's contents; returns its URL."""
    if snapshot.kind == "sqlite":
        target = tmp_path / "pay.db"
        with sqlite3.connect(snapshot.name) as src, sqlite3.connect(target) as dst:
            src.backup(dst)  # consistent even with a WAL beside the file
        return f"sqlite:///{target}"
    conn = postgres.connect()
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(snapshot.name)
                )
            )
    finally:
        conn.close()
    return postgres.url(name)


def remove_snapshot_file(snapshot: Snapshot) -> None:
    if snapshot.kind == "sqlite":
        shutil.rmtree(Path(snapshot.name).parent, ignore_errors=True)


def rows(engine: Engine, table: sa.Table, *where: Any) -> list[Any]:
    with engine.connect() as conn:
        return conn.execute(sa.select(table).where(*where)).all()


def one(engine: Engine, table: sa.Table, *where: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.select(table).where(*where)).one()


def kinds(engine: Engine, status: str | None = None) -> Counter:
    where = [] if status is None else [t.sync_conflict.c.status == status]
    return Counter(r.kind for r in rows(engine, t.sync_conflict, *where))


def conflict(engine: Engine, kind: str, subject: int) -> Any:
    """The conflict of this kind about this Assignar id (project, worker or timesheet)."""
    return one(
        engine,
        t.sync_conflict,
        t.sync_conflict.c.kind == kind,
        t.sync_conflict.c.subject_external_id == subject,
    )


def held_by(engine: Engine, conflict_id: str, entity: str = "timesheet") -> dict[int, Any]:
    """Assignar id → work date of the records of `entity` this conflict holds."""
    h, hc = t.sync_hold, t.sync_hold_conflict
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(h.c.assignar_id, h.c.work_date)
            .join(
                hc,
                sa.and_(
                    hc.c.connection_id == h.c.connection_id,
                    hc.c.entity == h.c.entity,
                    hc.c.assignar_id == h.c.assignar_id,
                ),
            )
            .where(hc.c.conflict_id == conflict_id, h.c.entity == entity)
        ).all()
    return dict(found)


def employee_id(engine: Engine, first: str, last: str) -> int:
    return one(
        engine, t.employee, t.employee.c.first_name == first, t.employee.c.last_name == last
    ).id


def project_id(engine: Engine, name: str) -> int:
    return one(engine, t.project, t.project.c.name == name).id


def cli(pipeline: Pipeline, *args: str) -> Result:
    """`assignar-pipeline ARGS` on this pipeline's Pay database, in process."""
    return CliRunner().invoke(main, list(args), env={"PAY_DATABASE_URL": pipeline.url})

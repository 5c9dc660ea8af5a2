"""The Pay database: engine from `PAY_DATABASE_URL`, migrations, and the per-connection write lock.

SQLite (a file under `.data/`) is the default so that a newcomer needs nothing; PostgreSQL is used
by URL in production. Both run the same Alembic migrations.
"""

from __future__ import annotations

import os
import re
import threading
import zlib
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

DEFAULT_URL = "sqlite:///.data/pay.db"
MIGRATIONS = Path(__file__).with_name("migrations")


def database_url(environ: os._Environ[str] | dict[str, str] = os.environ) -> str:
    """`PAY_DATABASE_URL`, or the SQLite file `.data/pay.db` under the working directory."""
    url = environ.get("PAY_DATABASE_URL") or DEFAULT_URL
    # SQLAlchemy maps a bare postgresql:// URL to psycopg 3, which is not installed; the one
    # PostgreSQL driver here is psycopg2 (dagster-postgres needs it too).
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg2://" + url.split("://", 1)[1]
    return url


def create_pay_engine(url: str | None = None) -> Engine:
    """An engine for the Pay database; SQLite gets WAL, foreign keys and writer-friendly locking."""
    url = url or database_url()
    if url.startswith("sqlite"):
        path = sa.engine.make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 60})
        sa.event.listen(engine, "connect", _sqlite_on_connect)
        sa.event.listen(engine, "begin", _sqlite_begin_immediate)
        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def _sqlite_on_connect(dbapi_connection, _record) -> None:
    # Let SQLAlchemy, not pysqlite, decide when transactions begin (see _sqlite_begin_immediate).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.close()


#: Execution option of a connection that only reads and wants one consistent snapshot (an export):
#: on SQLite it begins deferred, so it never holds the write lock while it reads.
SNAPSHOT_READ = "pay_snapshot_read"


def _sqlite_begin_immediate(conn: Connection) -> None:
    # Take the write lock when the transaction starts, not at its first write: two writers then
    # queue instead of one failing with "database is locked" halfway through.
    if conn.get_execution_options().get(SNAPSHOT_READ):
        conn.exec_driver_sql("BEGIN")
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


#: Alembic configures its `context` module globally while a command runs, so two threads that
#: migrate at once (a code server evaluating sensors in threads) break each other.
_MIGRATE_LOCK = threading.Lock()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent; safe to call at every start).

    Every run calls this; a database already at the newest migration is seen with one query,
    without importing Alembic (a fifth of a second of each run's start)."""
    if _at_head(engine):
        return
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with _MIGRATE_LOCK, engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


_REVISION = re.compile(r"^(down_)?revision\s*=\s*(?:None|[\"'](\w+)[\"'])\s*$", re.MULTILINE)


def head_revision() -> str | None:
    """The newest migration's revision, read from the scripts' `revision` and `down_revision`
    lines; None when they do not name exactly one head (Alembic then decides)."""
    revisions, parents = set(), set()
    for script in (MIGRATIONS / "versions").glob("*.py"):
        for down, revision in _REVISION.findall(script.read_text()):
            (parents if down else revisions).add(revision)
    heads = revisions - parents - {""}
    return heads.pop() if len(heads) == 1 else None


def _at_head(engine: Engine) -> bool:
    head = head_revision()
    if head is None:
        return False
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return False
        versions = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalars().all()
    return versions == [head]


def lock_connection(conn: Connection, connection_id: int) -> None:
    """Serialize writes for one connection until the surrounding transaction ends.

    PostgreSQL: a transaction-scoped advisory lock keyed by the connection. SQLite: the
    transaction already holds the database's single write lock (BEGIN IMMEDIATE).
    """
    if conn.dialect.name == "postgresql":
        key = zlib.crc32(f"assignar-connection:{connection_id}".encode())
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})

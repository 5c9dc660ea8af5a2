"""The Alembic migrations build exactly the schema `pay/tables.py` declares, on both engines."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from assignar_pipeline.pay.database import MIGRATIONS, create_pay_engine, head_revision, migrate
from assignar_pipeline.pay.tables import metadata

RECONCILIATION = {
    "assignar_rate",
    "reconcile_setting",
    "sync_conflict",
    "sync_conflict_seen",
    "sync_hold_conflict",
    "sync_resolution",
    "timesheet_adjustment",
}


def _differences(engine) -> list:
    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn), metadata)


def _run(engine, action, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        action(config, revision)


def test_migrated_schema_equals_the_declared_tables(pay_engine):
    """After `migrate()`, Alembic's compare_metadata finds no difference with tables.py."""
    assert _differences(pay_engine) == []


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_engine(request: pytest.FixtureRequest, tmp_path) -> Iterator[Engine]:
    """An empty database (no migration applied yet) on each engine."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'empty.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    engine = create_pay_engine(url)
    yield engine
    engine.dispose()


def test_reconciliation_migration_downgrades_and_upgrades_again(empty_engine):
    """Migration 0002 alone applies, downgrades to 0001 (its tables gone) and applies again."""

    def schema() -> tuple[set[str], set[str]]:
        with empty_engine.connect() as conn:
            tables = set(empty_engine.dialect.get_table_names(conn))
            lines = {c["name"] for c in empty_engine.dialect.get_columns(conn, "timesheet_line")}
        return tables, lines

    _run(empty_engine, command.upgrade, "0002")
    tables, lines = schema()
    assert tables >= RECONCILIATION and "rate" in lines
    _run(empty_engine, command.downgrade, "0001")
    tables, lines = schema()
    assert not RECONCILIATION & tables and "rate" not in lines
    _run(empty_engine, command.upgrade, "0002")
    assert schema()[0] >= RECONCILIATION


def test_head_revision_is_alembics_head() -> None:
    """The revision `migrate` compares with (to skip Alembic at a run's start) is Alembic's own."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert head_revision() == ScriptDirectory.from_config(config).get_current_head()


def test_migrate_upgrades_a_database_one_migration_behind(empty_engine):
    """A database at an older revision is brought to the head, not taken for one at the head."""
    _run(empty_engine, command.upgrade, "head")
    _run(empty_engine, command.downgrade, "-1")
    assert _differences(empty_engine) != []
    migrate(empty_engine)
    assert _differences(empty_engine) == []
    with empty_engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == head_revision()

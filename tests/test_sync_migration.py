"""Migration 0003 (sync operations) applies, goes back to 0002 and applies again, both engines."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

from assignar_pipeline.pay.database import MIGRATIONS, create_pay_engine

SYNC_TABLES = {
    "sync_cursor", "sync_setting", "sync_run", "rate_limit_bucket", "bulk_import", "notification",
}  # fmt: skip
SYNC_COLUMNS = {"sync_frequency", "sync_time", "sync_weekday", "auto_sync_timesheets",
                "auto_sync_orders", "lookback_days", "notify_emails", "webhook_url"}  # fmt: skip


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_engine(request: pytest.FixtureRequest, tmp_path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'e.db'}" if request.param == "sqlite" else None
    engine = create_pay_engine(url or request.getfixturevalue("pg_url"))
    yield engine
    engine.dispose()


def _run(engine: Engine, action, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        action(config, revision)


def _schema(engine: Engine) -> tuple[set[str], set[str]]:
    inspector = sa.inspect(engine)
    columns = {c["name"] for c in inspector.get_columns("connection")}
    return set(inspector.get_table_names()), columns


def test_sync_operations_migration_downgrades_and_upgrades_again(empty_engine):
    """0003 adds the sync tables and connection columns, 0002 takes them away, 0003 again."""
    _run(empty_engine, command.upgrade, "0003")
    tables, columns = _schema(empty_engine)
    assert tables >= SYNC_TABLES and columns >= SYNC_COLUMNS
    _run(empty_engine, command.downgrade, "0002")
    tables, columns = _schema(empty_engine)
    assert not SYNC_TABLES & tables and not SYNC_COLUMNS & columns
    _run(empty_engine, command.upgrade, "0003")
    assert _schema(empty_engine)[1] >= SYNC_COLUMNS


def test_connection_defaults_are_hourly_with_both_auto_syncs_on(empty_engine):
    """A connection stored without sync settings syncs hourly, both toggles on, 3-day lookback."""
    _run(empty_engine, command.upgrade, "0003")
    with empty_engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO team (id, name, account_type, country, currency, timezone) "
            "VALUES (1, 't', 'team', 'AU', 'AUD', 'UTC')"
        ))  # fmt: skip
        conn.execute(
            sa.text("INSERT INTO pay_user (id, email, full_name) VALUES (1, 'a@b.c', 'A')")
        )
        conn.execute(sa.text(
            "INSERT INTO connection (key, team_id, region, client_id, client_secret_ref, timezone, "
            "import_timesheets, import_orders, status, connected_by_user_id, created_at) "
            "VALUES ('k', 1, 'au', 'c', 'S', 'UTC', true, false, 'active', 1, CURRENT_TIMESTAMP)"
        ))  # fmt: skip
        row = conn.execute(sa.text(
            "SELECT sync_frequency, sync_time, sync_weekday, auto_sync_timesheets, "
            "auto_sync_orders, lookback_days FROM connection"
        )).one()  # fmt: skip
    assert tuple(row) == ("hourly", "06:00", 1, True, True, 3)

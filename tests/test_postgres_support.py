"""Tests for the throw-away PostgreSQL cluster and for Dagster instance storage on it."""

from __future__ import annotations

import os
import signal
import time
from decimal import Decimal
from pathlib import Path

import dagster as dg
import psycopg2
import pytest
import sqlalchemy as sa
from dagster_postgres import PostgresEventLogStorage

from tests.support import postgres as support
from tests.support.postgres import PostgresNotFoundError, TemporaryPostgres
from tests.support.signals import sigterm_raises_keyboard_interrupt


def test_cluster_is_a_real_postgresql_15_or_newer_server(pg_url: str) -> None:
    """The fixture's URL reaches a real PostgreSQL server (version 15+) through psycopg2."""
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            version = conn.execute(sa.text("SHOW server_version_num")).scalar_one()
            address = conn.execute(sa.text("SELECT inet_server_addr()::text")).scalar_one()
        assert engine.dialect.driver == "psycopg2"
    finally:
        engine.dispose()
    assert int(version) >= 150000
    assert address.startswith("127.0.0.1")


def test_numeric_round_trips_decimal_exactly(pg_url: str) -> None:
    """A table created through SQLAlchemy stores and returns Decimal('12345.6789') exactly."""
    metadata = sa.MetaData()
    amounts = sa.Table(
        "amounts",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("value", sa.Numeric(18, 4), nullable=False),
    )
    engine = sa.create_engine(pg_url)
    try:
        metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(amounts.insert().values(id=1, value=Decimal("12345.6789")))
        with engine.connect() as conn:
            stored = conn.execute(sa.select(amounts.c.value)).scalar_one()
    finally:
        engine.dispose()
    assert isinstance(stored, Decimal)
    assert stored == Decimal("12345.6789")
    assert str(stored) == "12345.6789"


@pytest.fixture
def other_pg_url(postgres: TemporaryPostgres) -> str:
    """A second database in the same cluster, to compare with `pg_url`."""
    return postgres.create_database("isolation_other")


def test_each_pg_url_database_is_isolated(pg_url: str, other_pg_url: str) -> None:
    """A test's database starts empty, and a table created in it does not exist in another."""
    assert pg_url != other_pg_url
    first = sa.create_engine(pg_url)
    second = sa.create_engine(other_pg_url)
    try:
        assert sa.inspect(first).get_table_names() == []
        with first.begin() as conn:
            conn.execute(sa.text("CREATE TABLE only_here (id integer)"))
        assert sa.inspect(first).has_table("only_here")
        assert not sa.inspect(second).has_table("only_here")
    finally:
        first.dispose()
        second.dispose()


@dg.asset
def tiny_asset() -> dg.MaterializeResult:
    """A one-row stand-in used only to exercise instance storage."""
    return dg.MaterializeResult(metadata={"dagster/row_count": 1})


def test_dagster_instance_with_postgres_storage_records_materializations(
    pg_url: str, tmp_path: Path
) -> None:
    """A DagsterInstance on postgres storage records a materialization and reads it back."""
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text(
        f"storage:\n  postgres:\n    postgres_url: {pg_url}\ntelemetry:\n  enabled: false\n",
        encoding="utf-8",
    )

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        result = dg.materialize([tiny_asset], instance=instance)
        assert result.success
        event = instance.get_latest_materialization_event(dg.AssetKey("tiny_asset"))

    assert event is not None
    assert event.run_id == result.run_id
    materialization = event.asset_materialization
    assert materialization is not None
    assert materialization.metadata["dagster/row_count"].value == 1

    # The event is really in PostgreSQL, not in some local fallback.
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            stored = conn.execute(
                sa.text(
                    "SELECT count(*) FROM event_logs "
                    "WHERE asset_key = :key AND dagster_event_type = 'ASSET_MATERIALIZATION'"
                ),
                {"key": '["tiny_asset"]'},
            ).scalar_one()
    finally:
        engine.dispose()
    assert stored == 1


def _fake_bin_dir(path: Path) -> Path:
    path.mkdir(parents=True)
    for name in ("initdb", "pg_ctl"):
        (path / name).touch()
    return path


def test_newest_debian_postgresql_version_is_chosen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Among /usr/lib/postgresql/<version>/bin directories the highest version wins, numerically."""
    for version in ("9.6", "13", "15"):
        _fake_bin_dir(tmp_path / version / "bin")
    (tmp_path / "common").mkdir()
    monkeypatch.setattr(support, "DEBIAN_POSTGRES_ROOT", tmp_path)
    monkeypatch.setenv("PATH", "")
    assert support.find_postgres_bin_dir() == tmp_path / "15" / "bin"


def test_missing_postgresql_binaries_raise_an_install_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without initdb/pg_ctl the error says what to install instead of skipping tests."""
    monkeypatch.setattr(support, "DEBIAN_POSTGRES_ROOT", tmp_path / "absent")
    monkeypatch.setenv("PATH", str(tmp_path))
    with (
        pytest.raises(PostgresNotFoundError, match="apt-get install postgresql"),
        TemporaryPostgres(),
    ):
        pass


def test_cluster_stops_and_deletes_its_directory_even_when_the_body_fails() -> None:
    """Leaving the context manager through an exception stops the server and removes its files."""
    with pytest.raises(RuntimeError, match="test body failed"), TemporaryPostgres() as cluster:
        base_dir = cluster.base_dir
        port = cluster.port
        pid = cluster.pid
        cluster.connect().close()
        raise RuntimeError("test body failed")

    assert base_dir is not None
    assert pid is not None
    assert not base_dir.exists()
    assert not support.process_alive(pid)
    with pytest.raises(psycopg2.OperationalError):
        psycopg2.connect(host="127.0.0.1", port=port, user="postgres", connect_timeout=2)


def test_sigterm_unwinds_like_ctrl_c_so_teardown_runs() -> None:
    """Inside the guard SIGTERM raises KeyboardInterrupt once; outside it the default is back."""
    # The session's `postgres` fixture may hold the guard already; start from the default.
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        with pytest.raises(KeyboardInterrupt), sigterm_raises_keyboard_interrupt():
            assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, signal.SIG_IGN)
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the signal is delivered at the next bytecode; never reached
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, previous)

"""Shared pytest fixtures: a real PostgreSQL server for the session (more fixtures join below)."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine

from assignar_pipeline.pay.database import create_pay_engine, migrate
from assignar_pipeline.simulator import SimulatorServer, TenantConfig
from tests.support.postgres import TemporaryPostgres
from tests.support.signals import restore_ctrl_c, sigterm_raises_keyboard_interrupt


def pytest_configure(config: pytest.Config) -> None:
    restore_ctrl_c()


# ---------------------------------------------------------------------------------------------
# PostgreSQL: one throw-away cluster per test session, one fresh database per test.
# ---------------------------------------------------------------------------------------------

_database_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def postgres() -> Iterator[TemporaryPostgres]:
    """A PostgreSQL cluster on 127.0.0.1, started once per session and deleted afterwards."""
    with sigterm_raises_keyboard_interrupt(), TemporaryPostgres() as cluster:
        yield cluster


@pytest.fixture
def pg_url(postgres: TemporaryPostgres, request: pytest.FixtureRequest) -> str:
    """URL (postgresql+psycopg2://) of an empty database that belongs to this test alone."""
    # The test's name in the database name makes the server log readable when a test fails;
    # PostgreSQL truncates identifiers at 63 bytes, so the counter goes first to keep them unique.
    slug = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower()).strip("_")
    name = f"t{next(_database_numbers)}_{slug}"[:63]
    return postgres.create_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def pay_engine(request: pytest.FixtureRequest, tmp_path) -> Iterator[Engine]:
    """A migrated, empty Pay database: a SQLite file, and (second parameter) a PostgreSQL one."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'pay.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    engine = create_pay_engine(url)
    migrate(engine)
    yield engine
    engine.dispose()


# End of the PostgreSQL fixtures.


# ---------------------------------------------------------------------------------------------
# Assignar simulator: one server per session on a free loopback port, reset before each test.
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _simulator_server() -> Iterator[SimulatorServer]:
    with SimulatorServer(config=TenantConfig()) as server:
        yield server


@pytest.fixture
def simulator(_simulator_server: SimulatorServer) -> SimulatorServer:
    """The demo tenant over real HTTP, regenerated with no faults and the demo credentials."""
    _simulator_server.simulator.reset(TenantConfig())
    return _simulator_server


@pytest.fixture
def short_token_simulator() -> Iterator[SimulatorServer]:
    """A small tenant whose tokens live two seconds, for token-expiry behaviour."""
    with SimulatorServer(config=TenantConfig(workers=3, days=3, orders=3), token_ttl=2) as server:
        yield server

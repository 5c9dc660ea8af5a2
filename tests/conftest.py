"""Shared pytest fixtures: a real PostgreSQL server for the session (more fixtures join below)."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

import pytest

from tests.support.postgres import TemporaryPostgres
from tests.support.signals import sigterm_raises_keyboard_interrupt

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


# End of the PostgreSQL fixtures.

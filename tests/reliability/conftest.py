"""Fixtures of the fault matrix: the small tenant, and a Pay database per case copied from one
that already holds a clean import (SQLite and PostgreSQL)."""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator

import dagster as dg
import pytest
import sqlalchemy as sa

from assignar_pipeline import extract
from assignar_pipeline.pay import tables as t
from assignar_pipeline.pay.database import create_pay_engine, migrate
from assignar_pipeline.simulator import SimulatorServer
from tests.reliability import harness
from tests.support.pipeline import Pipeline, make_pipeline

_numbers = itertools.count(1)


@pytest.fixture
def small_simulator(_simulator_server: SimulatorServer) -> Iterator[SimulatorServer]:
    """The session's simulator serving the small tenant, without faults."""
    _simulator_server.simulator.reset(harness.SMALL)
    yield _simulator_server
    _simulator_server.simulator.reset(harness.SMALL)


@pytest.fixture(autouse=True)
def _small_pages(monkeypatch) -> None:
    """Several pages and staging chunks per window, so that faults land between commits."""
    monkeypatch.setattr(extract, "PAGE_SIZE", harness.PAGE_SIZE)
    monkeypatch.setattr(extract, "CHUNK_RECORDS", harness.CHUNK_RECORDS)


@pytest.fixture(scope="session")
def instance(tmp_path_factory) -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test(temp_dir=str(tmp_path_factory.mktemp("dagster"))) as instance:
        yield instance


def _template(engine, simulator, instance) -> None:
    """Seed, connect and import WINDOW once: the state every case starts from."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(extract, "PAGE_SIZE", harness.PAGE_SIZE)
        mp.setattr(extract, "CHUNK_RECORDS", harness.CHUNK_RECORDS)
        simulator.simulator.reset(harness.SMALL)
        pipeline = make_pipeline(engine, simulator, instance, mp)
        result = pipeline.materialize(window=harness.WINDOW, assignar=harness.fast_assignar())
        assert result.success, "the clean import that every case starts from failed"
        assert harness.verdict(pipeline, pipeline.connection_id("demo")).clean
    engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory, _simulator_server, instance) -> str:
    path = tmp_path_factory.mktemp("template") / "pay.db"
    engine = create_pay_engine(f"sqlite:///{path}")
    migrate(engine)
    _template(engine, _simulator_server, instance)
    return str(path)


@pytest.fixture(scope="session")
def postgres_template(postgres, _simulator_server, instance) -> str:
    url = postgres.create_database("reliability_template")
    engine = create_pay_engine(url)
    migrate(engine)
    _template(engine, _simulator_server, instance)
    return "reliability_template"


def case_engine(request, database: str, tmp_path):
    """A fresh copy of the template for one case."""
    if database == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        copy = tmp_path / "pay.db"
        shutil.copyfile(template, copy)
        return create_pay_engine(f"sqlite:///{copy}")
    postgres = request.getfixturevalue("postgres")
    template = request.getfixturevalue("postgres_template")
    name = f"case_{next(_numbers)}"
    conn = postgres.connect()
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    finally:
        conn.close()
    return create_pay_engine(postgres.url(name))


@pytest.fixture
def case_pipeline(request, small_simulator, instance, monkeypatch, tmp_path) -> Iterator[Pipeline]:
    """The demo connection on a copy of the imported template, over the small tenant."""
    database = request.param
    engine = case_engine(request, database, tmp_path)
    monkeypatch.setenv("ASSIGNAR_API_URL", small_simulator.api_url)
    monkeypatch.setenv("ASSIGNAR_TOKEN_URL", small_simulator.token_url)
    monkeypatch.setenv("DEMO_SECRET", "demo-secret-change-me")
    with engine.connect() as conn:
        team_id = conn.execute(sa.select(t.connection.c.team_id)).scalar()
    yield Pipeline(engine, small_simulator, team_id, instance)
    engine.dispose()

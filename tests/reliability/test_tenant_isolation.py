"""Tenant isolation: several Pay teams connected to accounts whose Assignar ids, project codes
and worker emails coincide (the same account: the strongest overlap there is). No run of one
connection reads or writes a row of another; disconnecting one leaves the others byte-for-byte
unchanged."""

from __future__ import annotations

import shutil

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assignar_pipeline import extract
from assignar_pipeline.connections import (
    ConnectionRefused,
    ConnectionRequest,
    active_connections,
    connect,
    disconnect,
)
from assignar_pipeline.pay import tables as t
from assignar_pipeline.pay.database import create_pay_engine, migrate
from assignar_pipeline.pay.seed import seed_demo
from assignar_pipeline.regions import Endpoints
from assignar_pipeline.simulator import DEFAULT_CLIENT_ID
from tests.reliability import harness
from tests.support.pipeline import DEMO_OWNER, Pipeline, add_team, make_pipeline

KEYS = ("demo", "second", "third")


def rows_of(engine, connection_id: int, team_id: int) -> dict[str, list]:
    """Every row that belongs to one connection or its team, table by table."""
    out: dict[str, list] = {}
    with engine.connect() as conn:
        for table in t.metadata.sorted_tables:
            for column in ("connection_id", "source_connection_id", "team_id"):
                if column in table.c:
                    value = team_id if column == "team_id" else connection_id
                    rows = conn.execute(sa.select(table).where(table.c[column] == value)).all()
                    out[table.name] = sorted((tuple(r) for r in rows), key=repr)
                    break
        for child, parent, key in (
            (t.timesheet_line, t.timesheet, "timesheet_id"),
            (t.pay_order_line, t.pay_order, "order_id"),
        ):
            ids = sa.select(parent.c.id).where(parent.c.source_connection_id == connection_id)
            rows = conn.execute(sa.select(child).where(child.c[key].in_(ids))).all()
            out[child.name] = sorted((tuple(r) for r in rows), key=repr)
    return out


@pytest.fixture(scope="module")
def three_teams(tmp_path_factory, _simulator_server, instance) -> str:
    """A SQLite Pay database where three teams each imported the same account once."""
    path = tmp_path_factory.mktemp("tenants") / "pay.db"
    engine = create_pay_engine(f"sqlite:///{path}")
    migrate(engine)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(extract, "PAGE_SIZE", harness.PAGE_SIZE)
        _simulator_server.simulator.reset(harness.SMALL)
        pipeline = make_pipeline(engine, _simulator_server, instance, mp)
        for key in KEYS[1:]:
            mp.setenv(f"{key.upper()}_SECRET", "demo-secret-change-me")
            pipeline.connect(key, f"{key.upper()}_SECRET", team_id=add_team(engine, key))
        result = pipeline.materialize(window=harness.WINDOW, assignar=harness.fast_assignar())
        assert result.success
    engine.dispose()
    return str(path)


def test_a_second_connection_of_one_team_to_the_same_account_is_refused(
    pay_engine, simulator, monkeypatch
):
    """One team, one Assignar account: a second key for it would import every shift twice."""
    monkeypatch.setenv("DEMO_SECRET", "demo-secret-change-me")
    team = seed_demo(pay_engine)
    endpoints = Endpoints(api_url=simulator.api_url, token_url=simulator.token_url)
    request = ConnectionRequest(
        key="demo",
        team_id=team,
        user_email=DEMO_OWNER,
        region="au",
        client_id=DEFAULT_CLIENT_ID,
        client_secret_ref="DEMO_SECRET",
        timezone="Australia/Sydney",
    )
    connect(pay_engine, request, endpoints=endpoints)
    again = ConnectionRequest(**{**request.__dict__, "key": "demo-again"})
    with pytest.raises(ConnectionRefused) as refused:
        connect(pay_engine, again, endpoints=endpoints)
    assert "already imports this Assignar account as 'demo'" in str(refused.value)
    assert connect(pay_engine, request, endpoints=endpoints)  # the same key: an update, allowed
    disconnect(pay_engine, "demo")
    assert connect(pay_engine, again, endpoints=endpoints), "allowed once the first is off"


OPERATIONS = st.lists(
    st.sampled_from(["run", "edit_then_run", "failing_run", "disconnect"]), min_size=1, max_size=2
)


@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(actor=st.sampled_from(KEYS), operations=OPERATIONS)
def test_one_connection_never_touches_another(
    three_teams, _simulator_server, instance, monkeypatch, tmp_path_factory, actor, operations
):
    """Whatever one connection does (runs, runs after upstream edits, fails, disconnects), every
    row of the other connections and their teams stays byte-for-byte the same."""
    path = tmp_path_factory.mktemp("case") / "pay.db"
    shutil.copyfile(three_teams, path)
    engine = create_pay_engine(f"sqlite:///{path}")
    _simulator_server.simulator.reset(harness.SMALL)
    monkeypatch.setattr(extract, "PAGE_SIZE", harness.PAGE_SIZE)
    monkeypatch.setenv("ASSIGNAR_API_URL", _simulator_server.api_url)
    monkeypatch.setenv("ASSIGNAR_TOKEN_URL", _simulator_server.token_url)
    for key in KEYS:
        name = "DEMO_SECRET" if key == "demo" else f"{key.upper()}_SECRET"
        monkeypatch.setenv(name, "demo-secret-change-me")
    pipeline = Pipeline(engine, _simulator_server, 1, instance)
    with engine.connect() as conn:
        teams = dict(conn.execute(sa.select(t.connection.c.key, t.connection.c.team_id)).all())
    others = {k: (pipeline.connection_id(k), teams[k]) for k in KEYS if k != actor}
    before = {k: rows_of(engine, *ids) for k, ids in others.items()}
    for operation in operations:
        if operation == "edit_then_run":
            harness.edit_upstream(_simulator_server, "timesheets")
        if operation == "failing_run":
            name = "DEMO_SECRET" if actor == "demo" else f"{actor.upper()}_SECRET"
            monkeypatch.setenv(name, "not-the-secret")
        if operation == "disconnect":
            disconnect(engine, actor)
            continue
        if actor in {c.key for c in active_connections(engine)}:
            pipeline.materialize(
                window=harness.WINDOW, connections=[actor], assignar=harness.fast_assignar()
            )
    after = {k: rows_of(engine, *ids) for k, ids in others.items()}
    for key in others:
        changed = [name for name in before[key] if before[key][name] != after[key][name]]
        assert changed == [], f"{actor}'s {operations} changed {key}'s {changed}"
    engine.dispose()

"""Connections: Pay's checks, Assignar's test connection, storage without the secret, the CLI and
the Dagster job, on SQLite and PostgreSQL against the simulator over HTTP."""

from __future__ import annotations

from dataclasses import replace

import dagster as dg
import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from assignar_pipeline.cli import main
from assignar_pipeline.connections import (
    ConnectionRefused,
    ConnectionRequest,
    MissingSecretError,
    UnknownConnectionError,
    active_connections,
    all_connections,
    connect,
    disconnect,
    secret_for,
)
from assignar_pipeline.definitions import defs
from assignar_pipeline.pay import tables as t
from assignar_pipeline.pay.seed import PERSONAL_NAME, seed_demo
from assignar_pipeline.regions import Endpoints
from assignar_pipeline.simulator import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from resources.pay import PayDatabaseResource
from tests.support.pay import cells_containing, table_checksums
from tests.support.pipeline import add_team

SECRET_ENV = "DEMO_ASSIGNAR_SECRET"
OWNER = "priya.raman@example.com"
ADMIN = "tom.becker@example.com"
MEMBER = "sione.macdonald@example.com"
OUTSIDER = "jordan.lee@example.net"


@pytest.fixture
def team(pay_engine) -> int:
    """The demo team's id in a freshly seeded Pay database."""
    return seed_demo(pay_engine)


@pytest.fixture
def endpoints(simulator) -> Endpoints:
    return Endpoints(api_url=simulator.api_url, token_url=simulator.token_url)


def _request(team: int, **changes) -> ConnectionRequest:
    request = ConnectionRequest(
        key="demo",
        team_id=team,
        user_email=OWNER,
        region="au",
        client_id=DEFAULT_CLIENT_ID,
        client_secret_ref=SECRET_ENV,
        timezone="Australia/Sydney",
    )
    return replace(request, **changes)


def _env(secret: str = DEFAULT_CLIENT_SECRET) -> dict[str, str]:
    return {SECRET_ENV: secret}


def _refusal(engine, request, endpoints, environ=None) -> str:
    """Connect expecting a refusal; check nothing was stored; return the reason."""
    with pytest.raises(ConnectionRefused) as caught:
        connect(
            engine, request, environ=_env() if environ is None else environ, endpoints=endpoints
        )
    assert all_connections(engine) == []
    assert DEFAULT_CLIENT_SECRET not in str(caught.value)
    assert caught.value.reason == str(caught.value)
    return caught.value.reason


def _set_feature(engine, team: int, feature: str, enabled: bool) -> None:
    with engine.begin() as conn:
        conn.execute(
            t.team_feature.update()
            .where(t.team_feature.c.team_id == team, t.team_feature.c.feature == feature)
            .values(enabled=enabled)
        )


def _personal_id(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(t.team.c.id).where(t.team.c.name == PERSONAL_NAME)).scalar()


# -- refusals, in the order connect checks them ----------------------------------------------------


def test_missing_team_is_refused(pay_engine, team, endpoints):
    """A team id that does not exist is named, with how to create the demo team."""
    reason = _refusal(pay_engine, _request(team + 100), endpoints)
    assert f"Pay team {team + 100} does not exist" in reason


def test_personal_account_is_refused(pay_engine, team, endpoints):
    """A personal account is refused even though its owner asks and it has integrations."""
    request = _request(_personal_id(pay_engine), user_email=OUTSIDER)
    reason = _refusal(pay_engine, request, endpoints)
    assert "is a personal account" in reason and "Create a team" in reason


def test_team_without_integrations_is_refused(pay_engine, team, endpoints):
    """A subscription without the integrations feature is refused with how to get it."""
    _set_feature(pay_engine, team, "integrations", False)
    reason = _refusal(pay_engine, _request(team), endpoints)
    assert "subscription does not include integrations" in reason


def test_user_outside_the_team_is_refused(pay_engine, team, endpoints):
    """A Pay user who is not a member of the team cannot connect it."""
    reason = _refusal(pay_engine, _request(team, user_email=OUTSIDER), endpoints)
    assert f"{OUTSIDER!r} is not an active member" in reason


def test_member_without_integrations_permission_is_refused(pay_engine, team, endpoints):
    """A member's role lacks integrations.manage; the refusal names the role and permission."""
    reason = _refusal(pay_engine, _request(team, user_email=MEMBER), endpoints)
    assert "role 'member'" in reason and "lacks the integrations.manage permission" in reason


def test_orders_without_job_costing_are_refused(pay_engine, team, endpoints):
    """Orders need job costing; the refusal offers connecting without orders."""
    _set_feature(pay_engine, team, "job_costing", False)
    reason = _refusal(pay_engine, _request(team, import_orders=True), endpoints)
    assert "Importing orders needs job costing" in reason and "--no-orders" in reason
    assert connect(pay_engine, _request(team), environ=_env(), endpoints=endpoints) > 0


def test_unset_secret_variable_is_refused(pay_engine, team, endpoints):
    """The secret variable must be set where connect runs; the refusal names it."""
    reason = _refusal(pay_engine, _request(team), endpoints, environ={})
    assert f"Environment variable {SECRET_ENV} is not set" in reason


def test_secret_given_instead_of_a_variable_name_is_refused_without_echo(
    pay_engine, team, endpoints
):
    """Passing the secret itself as the reference is refused, and the value is not repeated."""
    request = _request(team, client_secret_ref=DEFAULT_CLIENT_SECRET)
    reason = _refusal(pay_engine, request, endpoints)
    assert "NAME of an environment variable" in reason


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"region": "eu"}, "Unknown Assignar region 'eu'"),
        ({"timezone": "Sydney"}, "Unknown time zone 'Sydney'"),
        ({"key": " demo"}, "surrounding spaces"),
    ],
)
def test_malformed_request_is_refused(pay_engine, team, endpoints, changes, expected):
    """A bad region, time zone or key is refused before anything is read."""
    assert expected in _refusal(pay_engine, _request(team, **changes), endpoints)


def test_wrong_secret_fails_the_test_connection(pay_engine, team, endpoints):
    """Assignar's rejection of the credentials becomes the refusal reason; no secret in it."""
    reason = _refusal(pay_engine, _request(team), endpoints, environ=_env("not-the-secret-42"))
    assert reason.startswith("Assignar's test connection failed: Assignar rejected the client id")
    assert "not-the-secret-42" not in reason


def test_api_access_disabled_fails_the_test_connection(pay_engine, team, endpoints, simulator):
    """An account without API access is refused with the client's what-to-fix message."""
    httpx.post(
        f"{simulator.base_url}/_simulator/faults", json={"kind": "api_access_disabled"}
    ).raise_for_status()
    reason = _refusal(pay_engine, _request(team), endpoints)
    assert "enable API access" in reason


def test_key_of_another_team_is_refused(pay_engine, team, endpoints):
    """A key belongs to one team: another team cannot take it over."""
    connect(pay_engine, _request(team), environ=_env(), endpoints=endpoints)
    with pay_engine.begin() as conn:
        other = conn.execute(
            t.team.insert()
            .values(
                name="Other Co",
                account_type="team",
                country="AU",
                currency="AUD",
                timezone="Australia/Perth",
            )
            .returning(t.team.c.id)
        ).scalar_one()
        conn.execute(
            t.team_feature.insert().values(team_id=other, feature="integrations", enabled=True)
        )
        owner_role, owner_id = conn.execute(
            sa.select(t.team_member.c.role_id, t.team_member.c.user_id)
            .where(t.team_member.c.team_id == team)
            .join(t.pay_user, t.pay_user.c.id == t.team_member.c.user_id)
            .where(t.pay_user.c.email == OWNER)
        ).one()
        conn.execute(
            t.team_member.insert().values(
                team_id=other, user_id=owner_id, role_id=owner_role, status="active"
            )
        )
    with pytest.raises(ConnectionRefused, match=f"already belongs to Pay team {team}"):
        connect(pay_engine, _request(other), environ=_env(), endpoints=endpoints)
    assert [(c.key, c.team_id) for c in all_connections(pay_engine)] == [("demo", team)]


# -- connecting, reconnecting, disconnecting ------------------------------------------------------


def test_connect_stores_the_variable_name_and_never_the_secret(pay_engine, team, endpoints):
    """The row holds the settings and the variable's name; no cell anywhere holds the secret."""
    connection_id = connect(
        pay_engine,
        _request(team, user_email="Tom.Becker@Example.com", import_orders=True),
        environ=_env(),
        endpoints=endpoints,
    )
    [row] = all_connections(pay_engine)
    assert row.id == connection_id
    assert (row.key, row.team_id, row.region, row.client_id, row.client_secret_ref) == (
        "demo",
        team,
        "au",
        DEFAULT_CLIENT_ID,
        SECRET_ENV,
    )
    assert (row.status, row.import_timesheets, row.import_orders) == ("active", True, True)
    assert row.timezone == "Australia/Sydney" and row.disconnected_at is None
    assert cells_containing(pay_engine, SECRET_ENV) == [("connection", "client_secret_ref")]
    assert cells_containing(pay_engine, DEFAULT_CLIENT_SECRET) == []
    with pay_engine.connect() as conn:
        admin = conn.execute(sa.select(t.pay_user.c.id).where(t.pay_user.c.email == ADMIN)).scalar()
    assert row.connected_by_user_id == admin


def test_connecting_twice_changes_nothing(pay_engine, team, endpoints):
    """The same request again returns the same id and leaves every table as it was."""
    first = connect(pay_engine, _request(team), environ=_env(), endpoints=endpoints)
    before = table_checksums(pay_engine)
    assert connect(pay_engine, _request(team), environ=_env(), endpoints=endpoints) == first
    assert table_checksums(pay_engine) == before


def test_reconnect_updates_settings_and_reactivates(pay_engine, team, endpoints):
    """Connecting a disconnected key again reactivates it with the new settings, same id."""
    first = connect(pay_engine, _request(team), environ=_env(), endpoints=endpoints)
    [created] = all_connections(pay_engine)
    disconnect(pay_engine, "demo")
    again = connect(
        pay_engine,
        _request(team, timezone="Australia/Perth", import_orders=True, import_timesheets=False),
        environ=_env(),
        endpoints=endpoints,
    )
    [row] = all_connections(pay_engine)
    assert again == first
    assert (row.status, row.disconnected_at, row.timezone) == ("active", None, "Australia/Perth")
    assert (row.import_orders, row.import_timesheets) == (True, False)
    assert row.created_at == created.created_at


def test_disconnect_keeps_imported_data(pay_engine, team, endpoints):
    """Disconnecting only flips the status: links, staging and logs of the connection stay."""
    connection_id = connect(pay_engine, _request(team), environ=_env(), endpoints=endpoints)
    [created] = all_connections(pay_engine)
    with pay_engine.begin() as conn:
        conn.execute(
            t.integration_link.insert().values(
                connection_id=connection_id,
                entity="worker",
                external_id=1004,
                pay_id=None,
                match_rule="ignored",
            )
        )
        conn.execute(
            t.sync_log.insert().values(
                connection_id=connection_id,
                run_id="r1",
                entity="workers",
                started_at=created.created_at,
            )
        )
    before = {k: v for k, v in table_checksums(pay_engine).items() if k != "connection"}
    row = disconnect(pay_engine, "demo")
    assert row.status == "disconnected" and row.disconnected_at is not None
    assert {k: v for k, v in table_checksums(pay_engine).items() if k != "connection"} == before
    assert disconnect(pay_engine, "demo").disconnected_at == row.disconnected_at
    assert active_connections(pay_engine) == []


def test_disconnect_of_an_unknown_key_lists_the_known_ones(pay_engine, team, endpoints):
    """A typo in the key gets the list of keys that do exist."""
    connect(pay_engine, _request(team), environ=_env(), endpoints=endpoints)
    with pytest.raises(UnknownConnectionError) as caught:
        disconnect(pay_engine, "dmeo")
    assert str(caught.value) == "No connection has the key 'dmeo'. Known keys: demo."


def test_active_connections_by_key_and_all(pay_engine, team, endpoints):
    """No keys: every active connection; keys: those, in order; unknown or disconnected: named."""
    # One team connects one Assignar account once: three teams, one key each.
    teams = {
        "b-site": team,
        "a-site": add_team(pay_engine, "A"),
        "c-site": add_team(pay_engine, "C"),
    }
    for key, team_id in teams.items():
        connect(pay_engine, _request(team_id, key=key), environ=_env(), endpoints=endpoints)
    disconnect(pay_engine, "c-site")
    assert [c.key for c in active_connections(pay_engine)] == ["a-site", "b-site"]
    assert [c.key for c in active_connections(pay_engine, ["b-site", "a-site"])] == [
        "b-site",
        "a-site",
    ]
    with pytest.raises(UnknownConnectionError) as caught:
        active_connections(pay_engine, ["a-site", "nope", "c-site"])
    message = str(caught.value)
    assert "unknown connection key(s): 'nope'" in message
    assert "disconnected: 'c-site'" in message and "Active connections: a-site, b-site" in message


def test_secret_for_resolves_the_reference(pay_engine, team, endpoints):
    """A run gets the secret from the named variable, or an error naming variable and key."""
    connect(pay_engine, _request(team), environ=_env(), endpoints=endpoints)
    [row] = active_connections(pay_engine, ["demo"])
    assert secret_for(row, _env()).reveal() == DEFAULT_CLIENT_SECRET
    with pytest.raises(
        MissingSecretError, match=f"{SECRET_ENV} \\(connection 'demo'\\) is not set"
    ):
        secret_for(row, {})


# -- the command line -----------------------------------------------------------------------------


@pytest.fixture
def cli_env(pay_engine, simulator) -> dict[str, str]:
    return {
        "PAY_DATABASE_URL": pay_engine.url.render_as_string(hide_password=False),
        "ASSIGNAR_API_URL": simulator.api_url,
        "ASSIGNAR_TOKEN_URL": simulator.token_url,
        SECRET_ENV: DEFAULT_CLIENT_SECRET,
    }


def _cli(env, *args: str):
    return CliRunner().invoke(main, list(args), env=env)


def _connect_args(team: int, *extra: str) -> list[str]:
    return [
        "connect",
        "--key",
        "demo",
        "--team-id",
        str(team),
        "--user-email",
        OWNER,
        "--region",
        "au",
        "--client-id",
        DEFAULT_CLIENT_ID,
        "--secret-env",
        SECRET_ENV,
        "--timezone",
        "Australia/Sydney",
        *extra,
    ]


def test_cli_pay_init_demo_prints_the_same_team_each_time(cli_env):
    """`pay init --demo` migrates, seeds and prints the team id; a second run prints the same."""
    first = _cli(cli_env, "pay", "init", "--demo")
    second = _cli(cli_env, "pay", "init", "--demo")
    assert first.exit_code == 0, first.output
    assert "Demo team id: 1" in first.output and "Pay database ready" in first.output
    assert second.output == first.output


def test_cli_connect_connections_disconnect(cli_env):
    """connect prints `Connected demo`, connections shows it, disconnect marks it."""
    team = int(_cli(cli_env, "pay", "init", "--demo").output.split("Demo team id: ")[1])
    connected = _cli(cli_env, *_connect_args(team, "--orders"))
    assert connected.exit_code == 0, connected.output
    assert connected.output.startswith("Connected demo\n")
    listed = _cli(cli_env, "connections")
    header, line = listed.output.splitlines()
    assert header.split() == ["key", "team", "region", "client", "id", "status", "created"]
    cells = line.split()
    assert cells[:2] == ["demo", str(team)]
    assert cells[-6:-3] == ["au", DEFAULT_CLIENT_ID, "active"] and cells[-1] == "UTC"
    gone = _cli(cli_env, "disconnect", "--key", "demo")
    assert gone.exit_code == 0 and gone.output.startswith("Disconnected demo (imported data kept)")
    assert " disconnected " in _cli(cli_env, "connections").output


def test_cli_refusal_exits_1_without_traceback(cli_env):
    """A refusal prints `Refused: <reason>` and exits 1; no traceback, no secret."""
    team = int(_cli(cli_env, "pay", "init", "--demo").output.split("Demo team id: ")[1])
    result = _cli({**cli_env, SECRET_ENV: "wrong-secret-xyz"}, *_connect_args(team))
    assert result.exit_code == 1
    assert result.output.startswith("Refused: Assignar's test connection failed:")
    assert "Traceback" not in result.output and "wrong-secret-xyz" not in result.output
    missing = _cli(cli_env, *_connect_args(team + 7))
    assert missing.exit_code == 1 and missing.output.startswith("Refused: Pay team")


def test_cli_disconnect_unknown_key_and_empty_list(cli_env):
    """Unknown keys exit 1 with the known ones; an empty list says how to connect."""
    assert "No connections yet" in _cli(cli_env, "connections").output
    result = _cli(cli_env, "disconnect", "--key", "nope")
    assert result.exit_code == 1
    assert "No connection has the key 'nope'" in result.output and "Traceback" not in result.output


def test_cli_unreachable_database_is_one_line(simulator):
    """A PAY_DATABASE_URL that cannot be opened gives one message naming the variable."""
    env = {"PAY_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/nothing"}
    result = _cli(env, "connections")
    assert result.exit_code == 1
    assert "Cannot open the Pay database" in result.output and "PAY_DATABASE_URL" in result.output
    assert "Traceback" not in result.output


# -- the Dagster job ------------------------------------------------------------------------------


def _run_job(engine, config: dict, tmp_path):
    job = defs.get_job_def("connect_assignar")
    resource = PayDatabaseResource(url=engine.url.render_as_string(hide_password=False))
    instance_dir = tmp_path / "dagster"
    instance_dir.mkdir(exist_ok=True)
    with dg.instance_for_test(temp_dir=str(instance_dir)) as instance:
        result = job.execute_in_process(
            run_config={"ops": {"connect_pay_team": {"config": config}}},
            instance=instance,
            resources={"pay": resource},
            raise_on_error=False,
        )
        run = instance.get_run_by_id(result.run_id)
        events = " ".join(str(e) for e in instance.all_logs(result.run_id))
        return result, str(run.run_config), events


def _job_config(team: int, **changes) -> dict:
    config = {
        "key": "demo",
        "team_id": team,
        "user_email": OWNER,
        "region": "au",
        "client_id": DEFAULT_CLIENT_ID,
        "client_secret_ref": SECRET_ENV,
        "timezone": "Australia/Sydney",
        "import_orders": True,
    }
    return {**config, **changes}


def test_job_connects_with_the_secret_only_in_the_environment(
    pay_engine, team, simulator, monkeypatch, tmp_path
):
    """The Launchpad job stores the connection; the secret is in no run config or event."""
    monkeypatch.setenv("ASSIGNAR_API_URL", simulator.api_url)
    monkeypatch.setenv("ASSIGNAR_TOKEN_URL", simulator.token_url)
    monkeypatch.setenv(SECRET_ENV, DEFAULT_CLIENT_SECRET)
    result, run_config, events = _run_job(pay_engine, _job_config(team), tmp_path)
    assert result.success
    assert [(c.key, c.import_orders) for c in active_connections(pay_engine)] == [("demo", True)]
    assert "Connected demo" in events
    assert DEFAULT_CLIENT_SECRET not in run_config + events


def test_job_fails_with_the_refusal_reason(pay_engine, team, simulator, monkeypatch, tmp_path):
    """A refused connect fails the run with the reason as the failure's description."""
    monkeypatch.setenv("ASSIGNAR_API_URL", simulator.api_url)
    monkeypatch.setenv("ASSIGNAR_TOKEN_URL", simulator.token_url)
    monkeypatch.setenv(SECRET_ENV, DEFAULT_CLIENT_SECRET)
    result, _, events = _run_job(pay_engine, _job_config(team, user_email=MEMBER), tmp_path)
    assert not result.success
    assert "Refused: Pay user 'sione.macdonald@example.com' has the role 'member'" in events
    assert all_connections(pay_engine) == []


def test_job_config_fields_are_described_for_the_launchpad():
    """Every config field of the job has a description, and none is the secret."""
    job = defs.get_job_def("connect_assignar")
    op_def = job.graph.node_named("connect_pay_team").definition
    fields = op_def.config_schema.as_field().config_type.fields
    assert set(fields) == {
        "key",
        "team_id",
        "user_email",
        "region",
        "client_id",
        "client_secret_ref",
        "timezone",
        "import_timesheets",
        "import_orders",
    }
    assert all(field.description for field in fields.values())

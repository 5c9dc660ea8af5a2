"""`assignar-pipeline test-connection`, run as an operator would, against the simulator."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
import pytest
from click.testing import CliRunner

from assignar_pipeline.cli import main
from assignar_pipeline.simulator import DEFAULT_CLIENT_ID as DEMO_CLIENT_ID
from assignar_pipeline.simulator import DEFAULT_CLIENT_SECRET as DEMO_CLIENT_SECRET


def _env(simulator, **extra: str) -> dict[str, str]:
    return {
        "ASSIGNAR_API_URL": simulator.api_url,
        "ASSIGNAR_TOKEN_URL": simulator.token_url,
        "ASSIGNAR_CLIENT_ID": DEMO_CLIENT_ID,
        "MY_SECRET": DEMO_CLIENT_SECRET,
        **extra,
    }


def test_successful_connection_prints_success_and_exits_zero(simulator):
    """Good credentials: `Connection successful`, the readable resources, exit status 0."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "assignar_pipeline.cli",
            "test-connection",
            "--secret-env",
            "MY_SECRET",
        ],
        env={**os.environ, **_env(simulator)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Connection successful")
    assert "timesheets-expanded" in result.stdout
    assert DEMO_CLIENT_SECRET not in result.stdout + result.stderr


def test_wrong_secret_explains_what_to_fix_and_exits_non_zero(simulator):
    """A wrong secret: the error says to check the credentials; no traceback, no secret."""
    result = CliRunner().invoke(
        main,
        ["test-connection", "--secret-env", "MY_SECRET"],
        env=_env(simulator, MY_SECRET="not-the-secret"),
    )
    assert result.exit_code == 1
    assert "Connection failed: Assignar rejected the client id" in result.output
    assert "Traceback" not in result.output
    assert "not-the-secret" not in result.output


def test_missing_secret_variable_is_named(simulator):
    """An unset secret variable is named, so the operator knows what to export."""
    env = _env(simulator)
    env.pop("MY_SECRET")
    result = CliRunner().invoke(main, ["test-connection", "--secret-env", "MY_SECRET"], env=env)
    assert result.exit_code == 1
    assert "Environment variable MY_SECRET is not set" in result.output


def test_api_access_disabled_is_reported(simulator):
    """Credentials without API access fail with the API-access message."""
    httpx.post(
        f"{simulator.base_url}/_simulator/faults", json={"kind": "api_access_disabled"}
    ).raise_for_status()
    result = CliRunner().invoke(
        main, ["test-connection", "--secret-env", "MY_SECRET"], env=_env(simulator)
    )
    assert result.exit_code == 1
    assert "enable API access" in result.output


def _closed_port() -> int:
    """A loopback port nothing listens on: connecting to it is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    ("token_url", "reason"),
    [
        (f"http://127.0.0.1:{_closed_port()}/oauth2/token", "connection refused"),
        ("http://nonexistent.invalid/oauth2/token", "host name not found"),
    ],
    ids=["closed-port", "unresolvable-host"],
)
def test_unreachable_login_server_fails_within_seconds_saying_what_to_check(
    simulator, token_url, reason
):
    """A login server that refuses connections or whose host does not resolve fails in seconds
    (not after a minute of retries) with the URL and what to check: URL, region, network."""
    started = time.monotonic()
    result = CliRunner().invoke(
        main,
        ["test-connection", "--secret-env", "MY_SECRET"],
        env=_env(simulator, ASSIGNAR_TOKEN_URL=token_url),
    )
    elapsed = time.monotonic() - started
    assert result.exit_code == 1
    assert elapsed < 15, f"took {elapsed:.1f} s"
    assert f"Could not reach Assignar's login server at {token_url} ({reason}" in result.output
    for what in ("ASSIGNAR_TOKEN_URL", "region", "network"):
        assert what in result.output
    assert "Traceback" not in result.output
    assert DEMO_CLIENT_SECRET not in result.output

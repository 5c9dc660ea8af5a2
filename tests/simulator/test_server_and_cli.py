"""Running the simulator: the in-process server's URLs and the `simulator serve` command."""

from __future__ import annotations

import re
import subprocess
import sys

import httpx
from click.testing import CliRunner

from assignar_pipeline.simulator import SimulatorServer, TenantConfig
from assignar_pipeline.simulator.cli import simulator

from .conftest import CLIENT_ID, CLIENT_SECRET, TOKEN_FORM

TINY = TenantConfig(workers=4, projects=3, days=5, orders=10)


def test_server_urls_and_free_ports():
    """Two servers on port 0 get distinct free ports and expose base, API and token URLs."""
    with SimulatorServer(config=TINY) as a, SimulatorServer(config=TINY) as b:
        assert a.port != b.port
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", a.base_url)
        assert a.api_url == a.base_url + "/v2"
        assert a.token_url == a.base_url + "/oauth2/token"
        resp = httpx.post(a.token_url, data=TOKEN_FORM, auth=(CLIENT_ID, CLIENT_SECRET))
        assert resp.status_code == 200
    try:
        httpx.get(a.base_url + "/v2/users", timeout=1)
    except httpx.TransportError:
        pass
    else:
        raise AssertionError("the server still answers after the with block")


def test_cli_group_is_named_simulator_and_serve_documents_its_options():
    """`simulator serve --help` lists the host, port, seed, scale and credential options."""
    assert simulator.name == "simulator"
    result = CliRunner().invoke(simulator, ["serve", "--help"])
    assert result.exit_code == 0
    for option in (
        "--host",
        "--port",
        "--seed",
        "--workers",
        "--projects",
        "--days",
        "--orders",
        "--scale",
        "--client-id",
        "--client-secret",
        "--now",
        "--token-ttl",
    ):
        assert option in result.output
    assert "ACCEPTS" in result.output


def test_cli_serve_prints_urls_and_answers(tmp_path):
    """`simulator serve` starts a server that prints its API and token URLs and serves them."""
    script = (
        "from assignar_pipeline.simulator.cli import simulator; "
        "simulator(['serve', '--port', '0', '--workers', '3', '--projects', '2', '--days', '3', "
        "'--orders', '5', '--client-secret', 'cli-secret'])"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        api_line = proc.stdout.readline()  # type: ignore[union-attr]
        token_line = proc.stdout.readline()  # type: ignore[union-attr]
        api_url = api_line.split()[-1]
        token_url = token_line.split()[-1]
        assert api_line.startswith("API URL:") and api_url.endswith("/v2")
        assert token_line.startswith("Token URL:") and token_url.endswith("/oauth2/token")
        token = httpx.post(token_url, data=TOKEN_FORM, auth=(CLIENT_ID, "cli-secret"))
        assert token.status_code == 200
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        assert httpx.get(api_url + "/users", headers=headers).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)

"""Fixtures for the simulator's own tests: servers on free ports and a plain-httpx API helper.

These tests talk to the simulator over real HTTP with httpx only, so they check the wire contract
that the project's Assignar client is written against.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from assignar_pipeline.simulator import SimulatorServer, TenantConfig

CLIENT_ID = "demo-client"
CLIENT_SECRET = "demo-secret-change-me"
SCOPE = "target-entity:b816a5d3-40c3-477f-a551-1d066d7211cc:api_access"
TOKEN_FORM = {"grant_type": "client_credentials", "scope": SCOPE}


class Api:
    """Minimal API user: gets a token once and reads with it."""

    def __init__(self, server: SimulatorServer) -> None:
        self.server = server
        self.http = httpx.Client(timeout=10)
        self.token = self.new_token()

    def new_token(self, client_id: str = CLIENT_ID, secret: str = CLIENT_SECRET) -> str:
        resp = self.http.post(self.server.token_url, data=TOKEN_FORM, auth=(client_id, secret))
        assert resp.status_code == 200, resp.text
        return resp.json()["access_token"]

    def get(self, path: str, token: str | None = None, **params: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        return self.http.get(self.server.api_url + path, params=params, headers=headers)

    def data(self, path: str, **params: Any) -> Any:
        resp = self.get(path, **params)
        assert resp.status_code == 200, resp.text
        return resp.json()["data"]

    def rows(self, path: str, **params: Any) -> list[dict[str, Any]]:
        data = self.data(path, **params)
        return data["rows"] if isinstance(data, dict) else data

    def everything(self, path: str, **params: Any) -> list[dict[str, Any]]:
        """All records of a list endpoint, by keyset paging on id."""
        out: list[dict[str, Any]] = []
        last = 0
        while True:
            page = self.rows(path, sort="id", id__gt=last, page_size=1000, **params)
            if not page:
                return out
            out += page
            last = page[-1]["id"]

    def control(self, method: str, name: str, **body: Any) -> httpx.Response:
        return self.http.request(method, f"{self.server.control_url}/{name}", json=body or None)


@pytest.fixture(scope="session")
def demo_server() -> Iterator[SimulatorServer]:
    """The default demo tenant, shared read-only by every test that does not change it."""
    with SimulatorServer(config=TenantConfig()) as server:
        yield server


@pytest.fixture(scope="session")
def _mutable_server() -> Iterator[SimulatorServer]:
    with SimulatorServer(config=TenantConfig()) as server:
        yield server


@pytest.fixture
def server(_mutable_server: SimulatorServer) -> SimulatorServer:
    """A demo tenant this test may change; reset to its generated state before the test."""
    _mutable_server.simulator.reset(TenantConfig())
    return _mutable_server


@pytest.fixture
def api(server: SimulatorServer) -> Iterator[Api]:
    client = Api(server)
    yield client
    client.http.close()


@pytest.fixture(scope="session")
def demo_api(demo_server: SimulatorServer) -> Iterator[Api]:
    client = Api(demo_server)
    yield client
    client.http.close()

"""Many tenants on one port (each its own account, told apart by client id), and the large
tenant's configuration."""

from __future__ import annotations

import httpx

from assignar_pipeline.simulator import Simulator, SimulatorServer, TenantConfig
from tests.simulator.conftest import CLIENT_SECRET, TOKEN_FORM


def _token(http: httpx.Client, server: SimulatorServer, client_id: str) -> httpx.Response:
    return http.post(server.token_url, data=TOKEN_FORM, auth=(client_id, CLIENT_SECRET))


def _users(http: httpx.Client, server: SimulatorServer, token: str) -> httpx.Response:
    return http.get(f"{server.api_url}/users", params={"page_size": "1000"},
                    headers={"Authorization": f"Bearer {token}"})  # fmt: skip


def test_each_client_id_reads_its_own_tenant_and_changes_stay_in_it():
    """A token from tenant a reads a's users, b's reads b's; an edit through a's control path
    reaches a only; an unknown client id is refused; stats add up both tenants."""
    tenants = {
        "tenant-a": Simulator(TenantConfig(seed=1, workers=5, projects=2, days=7, orders=5),
                              client_id="tenant-a"),
        "tenant-b": Simulator(TenantConfig(seed=2, workers=9, projects=2, days=7, orders=5),
                              client_id="tenant-b"),
    }  # fmt: skip
    with SimulatorServer(tenants=tenants) as server, httpx.Client(timeout=10) as http:
        tokens = {c: _token(http, server, c).json()["access_token"] for c in tenants}
        users = {c: _users(http, server, tokens[c]).json()["data"] for c in tenants}
        assert len(users["tenant-a"]) == len(tenants["tenant-a"].records("users"))
        assert len(users["tenant-b"]) == len(tenants["tenant-b"].records("users"))
        assert len(users["tenant-a"]) != len(users["tenant-b"])

        rid = users["tenant-a"][0]["id"]
        edited = http.patch(f"{server.control_url}/tenants/tenant-a/records/users/{rid}",
                            json={"first_name": "Renamed"})  # fmt: skip
        assert edited.status_code == 200, edited.text
        assert tenants["tenant-a"].get("users", rid)["first_name"] == "Renamed"
        assert all(u["first_name"] != "Renamed" for u in tenants["tenant-b"].records("users"))

        refused = _token(http, server, "tenant-z")
        assert refused.status_code == 401
        assert refused.json()["error"] == "invalid_client"
        assert _users(http, server, "not-a-token").status_code == 401

        stats = http.get(f"{server.control_url}/stats").json()
        assert stats["tenants"] == 2
        assert stats["requests"]["GET /v2/users"] == {"200": 2, "401": 1}
        assert sum(stats["requests"]["POST /oauth2/token"].values()) == 3


def test_large_tenant_scales_workers_projects_and_orders_but_keeps_three_years():
    """`TenantConfig.large()` is 2,000 workers, 300 projects, 1,095 days, 50,000 orders; a scale
    multiplies all but the days, and explicit values win."""
    large = TenantConfig.large()
    assert (large.workers, large.projects, large.days, large.orders) == (2000, 300, 1095, 50000)
    small = TenantConfig.large(0.05, days=62)
    assert (small.workers, small.projects, small.days, small.orders) == (100, 15, 62, 2500)

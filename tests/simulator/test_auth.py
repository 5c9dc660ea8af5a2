"""Token endpoint (RFC 6749 client credentials, Assignar's scope) and bearer checks on the API."""

from __future__ import annotations

import base64
import time

import httpx
import pytest

from assignar_pipeline.simulator import SimulatorServer, TenantConfig

from .conftest import CLIENT_ID, CLIENT_SECRET, SCOPE, TOKEN_FORM, Api


def _basic(client_id: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def test_token_success_returns_bearer_token_with_lifetime(demo_server):
    """Right Basic credentials, grant and scope give a Bearer token valid for 3600 s."""
    resp = httpx.post(
        demo_server.token_url,
        content=f"grant_type=client_credentials&scope={SCOPE.replace(':', '%3A')}",
        headers={
            **_basic(CLIENT_ID, CLIENT_SECRET),
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert resp.status_code == 200
    body = resp.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert isinstance(body["access_token"], str) and body["access_token"].count(".") == 2
    assert resp.headers["cache-control"] == "no-store"


def test_wrong_secret_is_invalid_client(demo_server):
    """A wrong client secret is refused with 401 invalid_client."""
    resp = httpx.post(demo_server.token_url, data=TOKEN_FORM, auth=(CLIENT_ID, "nope"))
    assert resp.status_code == 401
    assert resp.json() == {"error": "invalid_client"}


def test_missing_basic_auth_is_invalid_client(demo_server):
    """Credentials in the form body instead of Basic auth are not accepted."""
    form = {**TOKEN_FORM, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    resp = httpx.post(demo_server.token_url, data=form)
    assert resp.status_code == 401
    assert resp.json() == {"error": "invalid_client"}


@pytest.mark.parametrize("scope", ["", "api_access", SCOPE + "x", None])
def test_wrong_or_missing_scope_is_invalid_scope(demo_server, scope):
    """Any scope other than Assignar's exact one is refused with 400 invalid_scope."""
    form = {"grant_type": "client_credentials"}
    if scope is not None:
        form["scope"] = scope
    resp = httpx.post(demo_server.token_url, data=form, auth=(CLIENT_ID, CLIENT_SECRET))
    assert resp.status_code == 400
    assert resp.json() == {"error": "invalid_scope"}


def test_other_grant_type_is_unsupported(demo_server):
    """grant_type=password is refused with 400 unsupported_grant_type."""
    form = {"grant_type": "password", "scope": SCOPE}
    resp = httpx.post(demo_server.token_url, data=form, auth=(CLIENT_ID, CLIENT_SECRET))
    assert resp.status_code == 400
    assert resp.json() == {"error": "unsupported_grant_type"}


def test_token_endpoint_only_accepts_post(demo_server):
    """GET on the token endpoint is 405."""
    assert httpx.get(demo_server.token_url).status_code == 405


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic abc"}],
)
def test_api_without_valid_bearer_token_is_401(demo_server, headers):
    """No token, an unknown token or a non-Bearer scheme all get 401 with the API's body."""
    resp = httpx.get(demo_server.api_url + "/users", headers=headers)
    assert resp.status_code == 401
    assert resp.json() == {"status": 401, "message": "[401] Unauthorized"}


def test_issued_token_reads_the_api(demo_api: Api):
    """A freshly issued token is accepted by a list endpoint."""
    assert demo_api.get("/users").status_code == 200


def test_token_expires_after_its_ttl():
    """With a 1 s TTL the token works at once and is refused once the second has passed."""
    with SimulatorServer(
        config=TenantConfig(workers=3, projects=2, days=3, orders=5), token_ttl=1
    ) as server:
        api = Api(server)
        assert api.get("/users").status_code == 200
        time.sleep(1.2)
        assert api.get("/users").status_code == 401
        api.token = api.new_token()
        assert api.get("/users").status_code == 200


def test_configured_credentials_replace_the_demo_ones():
    """A server started with other credentials accepts those and refuses the demo ones."""
    config = TenantConfig(workers=3, projects=2, days=3, orders=5)
    with SimulatorServer(config=config, client_id="acme", client_secret="s3cret") as server:
        ok = httpx.post(server.token_url, data=TOKEN_FORM, auth=("acme", "s3cret"))
        demo = httpx.post(server.token_url, data=TOKEN_FORM, auth=(CLIENT_ID, CLIENT_SECRET))
    assert ok.status_code == 200
    assert demo.status_code == 401

"""Fault injection: the exact wire behaviour of every fault kind, counts, paths and statistics."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from .conftest import CLIENT_ID, CLIENT_SECRET, TOKEN_FORM, Api

TS = "/timesheets-expanded"


def inject(api: Api, kind: str, **params) -> dict:
    resp = api.control("POST", "faults", kind=kind, **params)
    assert resp.status_code == 200, resp.text
    return resp.json()


def token_status(api: Api, secret: str = CLIENT_SECRET) -> httpx.Response:
    return api.http.post(api.server.token_url, data=TOKEN_FORM, auth=(CLIENT_ID, secret))


def test_rate_limit_answers_429_with_retry_after_for_n_requests_on_a_path(api: Api):
    """rate_limit count=2 on /v2/users: two 429s with Retry-After, then 200; others untouched."""
    inject(api, "rate_limit", count=2, retry_after=7, path="/v2/users")
    assert api.get("/projects/").status_code == 200
    for _ in range(2):
        resp = api.get("/users")
        assert resp.status_code == 429
        assert resp.headers["retry-after"] == "7"
        assert resp.json() == {"status": 429, "message": "[429] Too Many Requests"}
    assert api.get("/users").status_code == 200


@pytest.mark.parametrize(
    ("status", "text"),
    [
        (500, "Internal Server Error"),
        (502, "Bad Gateway"),
        (503, "Service Unavailable"),
        (504, "Gateway Timeout"),
    ],
)
def test_server_error_statuses_and_bodies(api: Api, status, text):
    """server_error answers the chosen 5xx with {status, message: '[5xx] …'} once."""
    inject(api, "server_error", status=status)
    resp = api.get("/users")
    assert resp.status_code == status
    assert resp.json() == {"status": status, "message": f"[{status}] {text}"}
    assert api.get("/users").status_code == 200


def test_server_error_rejects_other_statuses(api: Api):
    """Only 500, 502, 503 and 504 can be injected."""
    assert api.control("POST", "faults", kind="server_error", status=418).status_code == 400


def test_slow_delays_then_answers_normally(api: Api):
    """slow waits `delay` seconds before a normal 200."""
    inject(api, "slow", delay=0.4)
    started = time.monotonic()
    resp = api.get("/users")
    assert resp.status_code == 200 and time.monotonic() - started >= 0.4
    started = time.monotonic()
    api.get("/users")
    assert time.monotonic() - started < 0.4


def test_drop_cuts_the_body_short_of_its_content_length(api: Api):
    """drop sends headers with the full Content-Length, part of the body, then closes."""
    inject(api, "drop", path="/v2/timesheets-expanded")
    headers = {"Authorization": f"Bearer {api.token}"}
    with api.http.stream("GET", api.server.api_url + TS, headers=headers) as resp:
        assert resp.status_code == 200
        announced = int(resp.headers["content-length"])
        with pytest.raises(httpx.RemoteProtocolError):
            resp.read()
    assert announced > 1000
    assert api.get(TS).status_code == 200


def test_malformed_json_is_a_200_that_does_not_parse(api: Api):
    """malformed_json answers 200 with a truncated JSON body."""
    inject(api, "malformed_json")
    resp = api.get("/users")
    assert resp.status_code == 200
    assert int(resp.headers["content-length"]) == len(resp.content)
    with pytest.raises(json.JSONDecodeError):
        json.loads(resp.content)
    assert api.get("/users").json()["status"] == 200


def test_malformed_record_breaks_types_of_one_record(api: Api):
    """malformed_record: valid envelope; one record's id, modified_time, total_time mistyped."""
    good = api.rows(TS, page_size=10)
    inject(api, "malformed_record", path="/v2/timesheets-expanded")
    bad = api.rows(TS, page_size=10)
    broken = [i for i, (a, b) in enumerate(zip(good, bad, strict=True)) if a != b]
    assert broken == [5]
    row = bad[5]
    assert row["id"] == f"id-{good[5]['id']}"
    assert row["modified_time"] == "not-a-date"
    assert isinstance(row["total_time"], int)
    assert api.rows(TS, page_size=10) == good


def test_maintenance_hits_the_api_and_the_token_endpoint(api: Api):
    """maintenance: 503 + Retry-After and the maintenance body, also at /oauth2/token."""
    inject(api, "maintenance", count=2, retry_after=30)
    body = {
        "status": 503,
        "errorType": "Maintenance",
        "message": "[503] Assignar is undergoing scheduled maintenance",
    }
    for resp in (api.get("/users"), token_status(api)):
        assert resp.status_code == 503
        assert resp.headers["retry-after"] == "30"
        assert resp.json() == body
    assert api.get("/users").status_code == 200


def test_faults_without_path_leave_the_token_endpoint_alone(api: Api):
    """A server_error without path applies to /v2 requests, not to the token endpoint."""
    inject(api, "server_error", count=None)
    assert token_status(api).status_code == 200
    assert api.get("/users").status_code == 500


@pytest.mark.parametrize("how", ["fault", "endpoint"])
def test_revoked_tokens_are_refused_and_new_ones_work(api: Api, how):
    """After revoke_tokens every earlier token gets 401; a newly issued token works."""
    old = api.token
    if how == "fault":
        assert inject(api, "revoke_tokens") == {"kind": "revoke_tokens"}
    else:
        assert api.control("POST", "revoke-tokens").status_code == 200
    resp = api.get("/users", token=old)
    assert resp.status_code == 401
    assert resp.json() == {"status": 401, "message": "[401] Unauthorized"}
    assert api.get("/users", token=api.new_token()).status_code == 200


def test_rotated_credentials_refuse_the_old_secret_and_old_tokens(api: Api):
    """rotate_credentials: old secret is invalid_client, the new one works, tokens are revoked."""
    old = api.token
    result = inject(api, "rotate_credentials", client_secret="rotated-secret")
    assert result["client_secret"] == "rotated-secret"
    resp = token_status(api)
    assert resp.status_code == 401 and resp.json() == {"error": "invalid_client"}
    assert api.get("/users", token=old).status_code == 401
    new = api.new_token(secret="rotated-secret")
    assert api.get("/users", token=new).status_code == 200


def test_credentials_endpoint_sets_what_is_accepted(api: Api):
    """POST /_simulator/credentials changes the accepted client id and secret."""
    api.control("POST", "credentials", client_id="other", client_secret="pw")
    assert token_status(api).status_code == 401
    ok = api.http.post(api.server.token_url, data=TOKEN_FORM, auth=("other", "pw"))
    assert ok.status_code == 200


def test_wrong_region_issues_tokens_that_the_api_refuses(api: Api):
    """wrong_region: login still works but every API request is 401 until cleared."""
    inject(api, "wrong_region")
    token = api.new_token()
    for path in ("/users", TS, "/projects/"):
        resp = api.get(path, token=token)
        assert resp.status_code == 401
        assert resp.json() == {"status": 401, "message": "[401] Unauthorized"}
    assert api.control("DELETE", "faults").json() == {"cleared": True}
    assert api.get("/users", token=token).status_code == 200


def test_api_access_disabled_is_invalid_scope_at_login(api: Api):
    """api_access_disabled: the token endpoint answers 400 invalid_scope until cleared."""
    inject(api, "api_access_disabled")
    for _ in range(2):
        resp = token_status(api)
        assert resp.status_code == 400 and resp.json() == {"error": "invalid_scope"}
    api.control("DELETE", "faults")
    assert token_status(api).status_code == 200


def _numbered(api: Api) -> list[int]:
    ids, page = [], 1
    while chunk := api.rows(TS, sort="id", page=page, page_size=100, fields="id"):
        ids += [r["id"] for r in chunk]
        page += 1
    return ids


def _keyset(api: Api) -> list[int]:
    ids, last = [], 0
    while chunk := api.rows(TS, sort="id", id__gt=last, page_size=100, fields="id"):
        ids += [r["id"] for r in chunk]
        last = ids[-1]
    return ids


def test_drift_makes_numbered_paging_skip_records(api: Api):
    """Under drift, numbered pages (page=2, 3, …) miss records that existed all along."""
    before = set(_keyset(api))
    inject(api, "drift")
    got = _numbered(api)
    api.control("DELETE", "faults")
    after = set(_keyset(api))
    assert (before & after) - set(got), "numbered paging did not skip anything"
    # Each page after the first deletes a record that sorts before it and adds a new one.
    assert len(after) == len(before)


def test_keyset_paging_stays_exact_under_drift(api: Api):
    """While a numbered reader causes drift, keyset paging neither skips nor repeats records."""
    before = set(_keyset(api))
    inject(api, "drift")
    got: list[int] = []
    last, other_page = 0, 2
    while chunk := api.rows(TS, sort="id", id__gt=last, page=1, page_size=100, fields="id"):
        got += [r["id"] for r in chunk]
        last = got[-1]
        # Meanwhile a numbered reader moves through the same list, causing drift.
        if api.rows(TS, sort="id", page=other_page, page_size=50, fields="id"):
            other_page += 1
    api.control("DELETE", "faults")
    after = set(_keyset(api))
    assert len(got) == len(set(got))
    assert before & after <= set(got)
    assert after - before <= set(got)  # records added meanwhile sort after the cursor
    assert before - after, "the numbered reader caused no drift"


def test_churn_changes_the_list_under_a_keyset_reader_that_stays_exact(api: Api):
    """churn after each page deletes a read record, edits one read and one unread, inserts one:
    a keyset reader sees every record that existed throughout once, the unread edit in its new
    version and the insert."""
    before = {r["id"]: r["modified_time"] for r in api.everything(TS)}
    inject(api, "churn", count=3, path="/v2/timesheets-expanded")
    got: dict[int, str] = {}
    last = 0
    while chunk := api.rows(TS, sort="id", id__gt=last, page_size=100):
        assert not set(got) & {r["id"] for r in chunk}, "a record was repeated"
        got.update({r["id"]: r["modified_time"] for r in chunk})
        last = chunk[-1]["id"]
    after = {r["id"]: r["modified_time"] for r in api.everything(TS)}
    assert api.control("GET", "stats").json()["faults_applied"]["churn"] == 3
    assert len(before.keys() - after.keys()) == 3, "three deletes"
    assert len(after.keys() - before.keys()) == 3, "three inserts"
    assert before.keys() & after.keys() <= got.keys(), (
        "a record that existed throughout was skipped"
    )
    assert after.keys() - before.keys() <= got.keys(), (
        "an insert sorted after the reader was missed"
    )
    edited = {i for i in before.keys() & after.keys() if before[i] != after[i]}
    assert edited, "nothing was edited"
    assert any(got[i] == after[i] for i in edited), "no edit ahead of the reader was seen"


def test_revoke_tokens_after_requests_lands_mid_list(api: Api):
    """revoke_tokens with after_requests=2 on a path: the first two reads work, the third is 401,
    and a new token works again."""
    inject(api, "revoke_tokens", after_requests=2, path="/v2/users")
    assert [api.get("/users").status_code for _ in range(3)] == [200, 200, 401]
    api.token = api.new_token()
    assert api.get("/users").status_code == 200


def test_rotate_credentials_after_requests_refuses_the_old_secret_mid_run(api: Api):
    """rotate_credentials with after_requests: it happens after that many answers; then the old
    secret is invalid_client and the returned new one works."""
    fault = inject(api, "rotate_credentials", after_requests=1, path="/v2/projects/")
    new_secret = fault["client_secret"]
    assert api.get("/projects/").status_code == 200
    assert api.get("/projects/").status_code == 401
    assert token_status(api).status_code == 401
    assert token_status(api, new_secret).status_code == 200


def test_after_requests_lets_the_first_requests_through(api: Api):
    """server_error with after_requests=2: two answers, then the outage, on that path only."""
    inject(api, "server_error", count=None, status=503, after_requests=2, path="/v2/users")
    assert [api.get("/users").status_code for _ in range(4)] == [200, 200, 503, 503]
    assert api.get("/projects/").status_code == 200


def test_action_faults_check_after_requests(api: Api):
    """after_requests must be a positive integer."""
    resp = api.control("POST", "faults", kind="revoke_tokens", after_requests=0)
    assert resp.status_code == 400


def test_request_rate_limit_refuses_bursts(api: Api):
    """request_rate rps=5: a burst of 12 requests gets some 429s with Retry-After."""
    inject(api, "request_rate", rps=5)
    answers = [api.get("/order-types") for _ in range(12)]
    statuses = [r.status_code for r in answers]
    assert statuses[:5] == [200] * 5
    refused = [r for r in answers if r.status_code == 429]
    assert refused and all(r.headers["retry-after"] == "1" for r in refused)
    api.control("DELETE", "faults")
    assert api.get("/order-types").status_code == 200


def test_control_endpoints_are_never_faulted(api: Api):
    """Even a fault aimed at /_simulator leaves the control plane working."""
    inject(api, "server_error", count=None, path="/_simulator")
    inject(api, "maintenance", count=None)
    assert api.control("GET", "stats").status_code == 200
    assert len(api.control("GET", "faults").json()["faults"]) == 2


def test_stats_count_requests_tokens_rows_and_faults(api: Api):
    """GET /_simulator/stats reports requests per route and status, tokens and rows served."""
    api.control("POST", "reset")
    api.get("/users", page_size=5)
    api.get("/users/1001")
    inject(api, "rate_limit")
    api.get("/users")
    api.get("/users/424242")
    stats = api.control("GET", "stats").json()
    assert stats["requests"]["GET /v2/users"] == {"200": 1, "429": 1}
    assert stats["requests"]["GET /v2/users/{id}"] == {"200": 1, "404": 1}
    assert stats["rows_served"] == 6
    assert stats["tokens_issued"] >= 1
    assert stats["faults_applied"] == {"rate_limit": 1}

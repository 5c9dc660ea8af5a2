"""The Assignar client against the simulator over real HTTP, under every fault it can inject."""

from __future__ import annotations

import logging
import socket
import time
from decimal import Decimal

import httpx
import pytest

from assignar_pipeline.client import (
    PROJECTS,
    TIMESHEETS,
    USERS,
    AssignarClient,
    RetryPolicy,
    TokenBucket,
    encode_filters,
)
from assignar_pipeline.errors import (
    ApiAccessDisabledError,
    BadCredentialsError,
    InvalidRequestError,
    MaintenanceError,
    MalformedResponseError,
    RateLimitedError,
    UnavailableError,
    WrongRegionError,
)
from assignar_pipeline.regions import API_URLS, TOKEN_URL, Endpoints, Region, endpoints_for
from assignar_pipeline.simulator import DEFAULT_CLIENT_ID as DEMO_CLIENT_ID
from assignar_pipeline.simulator import DEFAULT_CLIENT_SECRET as DEMO_CLIENT_SECRET
from assignar_pipeline.simulator import SimulatorServer

FAST_RETRY = RetryPolicy(max_attempts=5, base_delay=0.01, max_delay=0.05, max_total=10)


@pytest.fixture
def client(simulator):
    with AssignarClient(
        DEMO_CLIENT_ID,
        DEMO_CLIENT_SECRET,
        endpoints=Endpoints(simulator.api_url, simulator.token_url),
        retry=FAST_RETRY,
        timeout=2.0,
    ) as client:
        yield client


def inject(simulator, kind: str, **params) -> None:
    """Arm a fault through the simulator's control plane, as an out-of-process test would."""
    response = httpx.post(f"{simulator.base_url}/_simulator/faults", json={"kind": kind, **params})
    response.raise_for_status()


def all_ids(simulator, resource: str) -> list[int]:
    """Every id of a resource, read straight from the simulator with plain httpx."""
    token = httpx.post(
        simulator.token_url,
        auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
        data={"grant_type": "client_credentials", "scope": _scope()},
    ).json()["access_token"]
    ids, page = [], 1
    while True:
        body = httpx.get(
            f"{simulator.api_url}/{resource}",
            params={"page": page, "page_size": 1000, "sort": "id", "fields": "id"},
            headers={"Authorization": f"Bearer {token}"},
        ).json()["data"]
        rows = body["rows"] if isinstance(body, dict) else body
        ids += [row["id"] for row in rows]
        if len(rows) < 1000:
            return ids
        page += 1


def _scope() -> str:
    from assignar_pipeline.regions import SCOPE

    return SCOPE


# -- configuration ------------------------------------------------------------------------


def test_regions_have_the_documented_urls():
    """na and au reach their own API servers and share the documented login server."""
    assert endpoints_for("na", {}) == Endpoints(API_URLS[Region.NA], TOKEN_URL)
    assert endpoints_for("au", {}).api_url == "https://api.assignar.com.au/v2"
    assert TOKEN_URL == "https://login.assignar.com/oauth2/token"


def test_environment_overrides_the_urls():
    """ASSIGNAR_API_URL and ASSIGNAR_TOKEN_URL point any region at another server."""
    env = {"ASSIGNAR_API_URL": "http://127.0.0.1:9/v2/", "ASSIGNAR_TOKEN_URL": "http://t/tok"}
    assert endpoints_for("au", env) == Endpoints("http://127.0.0.1:9/v2", "http://t/tok")


def test_unknown_region_says_which_exist():
    """A typo in the region names the valid choices."""
    with pytest.raises(ValueError, match=r"'na'.*'au'"):
        endpoints_for("eu", {})


# -- auth ---------------------------------------------------------------------------------


def test_token_is_fetched_once_and_reused(client, simulator):
    """Many requests share one cached token."""
    for _ in range(3):
        list(client.iter_pages(PROJECTS, page_size=5))
    assert client.stats.token_fetches == 1


def test_revoked_token_is_replaced_once_and_the_read_completes(client, simulator):
    """A 401 mid-run fetches a new token once and the listing still returns every record."""
    expected = all_ids(simulator, TIMESHEETS)
    pages = client.iter_pages(TIMESHEETS, page_size=50, fields=["id"])
    got = [row["id"] for row in next(pages)]
    httpx.post(f"{simulator.base_url}/_simulator/revoke-tokens").raise_for_status()
    got += [row["id"] for page in pages for row in page]
    assert got == expected
    assert client.stats.token_fetches == 2


def test_token_is_renewed_before_it_expires(short_token_simulator):
    """A token is replaced shortly before its expiry instead of failing a request."""
    sim = short_token_simulator
    with AssignarClient(
        DEMO_CLIENT_ID,
        DEMO_CLIENT_SECRET,
        endpoints=Endpoints(sim.api_url, sim.token_url),
        retry=FAST_RETRY,
    ) as client:
        client.get(USERS, all_ids(sim, USERS)[0])
        time.sleep(2.0)
        client.get(USERS, all_ids(sim, USERS)[0])
        assert client.stats.token_fetches == 2
        assert client.stats.by_status.get(401, 0) == 0


def test_rotated_credentials_are_reported_as_bad_credentials(simulator, caplog):
    """Credentials rotated in Assignar give one clear error that names the client id only."""
    httpx.post(
        f"{simulator.base_url}/_simulator/credentials",
        json={"client_id": DEMO_CLIENT_ID, "client_secret": "rotated-secret-value"},
    ).raise_for_status()
    with (
        AssignarClient(
            DEMO_CLIENT_ID,
            DEMO_CLIENT_SECRET,
            endpoints=Endpoints(simulator.api_url, simulator.token_url),
            retry=FAST_RETRY,
        ) as client,
        pytest.raises(BadCredentialsError) as error,
    ):
        list(client.iter_pages(PROJECTS))
    assert DEMO_CLIENT_ID in str(error.value)
    assert "Settings" in str(error.value)
    assert DEMO_CLIENT_SECRET not in str(error.value)


def test_wrong_region_is_named(client, simulator):
    """Login works but the API rejects even a fresh token: the error suggests the other region."""
    inject(simulator, "wrong_region", count=None)
    with pytest.raises(WrongRegionError, match="region 'au'"):
        list(client.iter_pages(USERS))


def test_api_access_not_enabled(client, simulator):
    """A scope refused by the login server means API access is not enabled."""
    inject(simulator, "api_access_disabled", count=None)
    with pytest.raises(ApiAccessDisabledError, match="enable API access"):
        client.check_connection()


# -- retries ------------------------------------------------------------------------------


def test_rate_limit_honours_retry_after(simulator):
    """A 429 waits at least Retry-After seconds, then the request succeeds."""
    slept: list[float] = []
    with AssignarClient(
        DEMO_CLIENT_ID,
        DEMO_CLIENT_SECRET,
        endpoints=Endpoints(simulator.api_url, simulator.token_url),
        retry=FAST_RETRY,
        sleep=slept.append,
    ) as client:
        inject(simulator, "rate_limit", count=2, retry_after=3, path="/v2/users")
        assert list(client.iter_pages(USERS, page_size=1000))
    assert len(slept) == 2
    assert all(seconds >= 3 for seconds in slept)


def test_persistent_rate_limit_ends_in_a_clear_error(client, simulator):
    """429s beyond the retry budget raise RateLimitedError with what to do."""
    inject(simulator, "rate_limit", count=None, retry_after=0)
    with pytest.raises(RateLimitedError, match="Lower the request rate"):
        list(client.iter_pages(PROJECTS))


def test_retry_after_longer_than_the_budget_fails_fast(simulator):
    """A Retry-After that exceeds the remaining retry time is not slept through."""
    slept: list[float] = []
    with AssignarClient(
        DEMO_CLIENT_ID,
        DEMO_CLIENT_SECRET,
        endpoints=Endpoints(simulator.api_url, simulator.token_url),
        retry=RetryPolicy(max_attempts=5, base_delay=0.01, max_total=5),
        sleep=slept.append,
    ) as client:
        inject(simulator, "rate_limit", count=None, retry_after=3600)
        with pytest.raises(RateLimitedError):
            list(client.iter_pages(PROJECTS))
    assert slept == []


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_error_bursts_are_retried(client, simulator, status):
    """A short burst of 5xx answers is retried transparently."""
    inject(simulator, "server_error", count=3, status=status)
    assert sorted(r["id"] for r in client.iter_records(PROJECTS)) == all_ids(simulator, PROJECTS)
    assert client.stats.retries == 3


def test_persistent_server_errors_end_in_unavailable(client, simulator):
    """5xx for the whole budget raises UnavailableError naming the last problem."""
    inject(simulator, "server_error", count=None, status=502)
    with pytest.raises(UnavailableError, match="HTTP 502"):
        list(client.iter_pages(PROJECTS))
    assert client.stats.requests == 1 + FAST_RETRY.max_attempts  # token + each attempt


def test_maintenance_burst_is_retried(client, simulator):
    """A brief maintenance window is waited out."""
    inject(simulator, "maintenance", count=2, retry_after=0, path="/v2/")
    assert list(client.iter_pages(USERS))


def test_long_maintenance_is_reported_as_maintenance(client, simulator):
    """Maintenance that outlasts the budget says so, and that nothing was lost."""
    inject(simulator, "maintenance", count=None, retry_after=0)
    with pytest.raises(MaintenanceError, match=r"maintenance.*Nothing was lost"):
        list(client.iter_pages(USERS))


def test_slow_response_times_out_and_is_retried(client, simulator):
    """An answer slower than the timeout is abandoned and asked again."""
    inject(simulator, "slow", count=1, delay=3, path="/v2/users")
    assert sorted(r["id"] for r in client.iter_records(USERS)) == all_ids(simulator, USERS)
    assert client.stats.retries == 1


def test_a_login_server_refusing_briefly_is_retried(simulator):
    """A login server that refuses one connection (restarting) is tried again, and the
    connection works: only one that stays unreachable fails fast."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    restarted = SimulatorServer(simulator.simulator, port=port)

    def sleep_while_it_restarts(seconds: float) -> None:
        restarted.start()

    try:
        with AssignarClient(
            DEMO_CLIENT_ID,
            DEMO_CLIENT_SECRET,
            endpoints=Endpoints(simulator.api_url, restarted.token_url),
            sleep=sleep_while_it_restarts,
        ) as client:
            assert client.check_connection()
            assert client.stats.retries == 1
    finally:
        restarted.stop()


def test_connection_dropped_mid_body_is_retried(client, simulator):
    """A body cut off by a dropped connection is fetched again, not half-parsed."""
    inject(simulator, "drop", count=2, path="/v2/timesheets-expanded")
    got = [r["id"] for r in client.iter_records(TIMESHEETS, page_size=200, fields=["id"])]
    assert got == all_ids(simulator, TIMESHEETS)
    assert client.stats.retries == 2


def test_malformed_json_page_is_retried(client, simulator):
    """One page of invalid JSON is fetched again."""
    inject(simulator, "malformed_json", count=1, path="/v2/projects/")
    assert sorted(r["id"] for r in client.iter_records(PROJECTS)) == all_ids(simulator, PROJECTS)


def test_persistent_malformed_json_is_a_malformed_response(client, simulator):
    """Invalid JSON every time raises MalformedResponseError."""
    inject(simulator, "malformed_json", count=None)
    with pytest.raises(MalformedResponseError, match="invalid JSON"):
        list(client.iter_pages(PROJECTS))


def test_malformed_record_is_passed_on_for_validation(client, simulator):
    """A record with wrong types reaches the caller (pandera quarantines it), nothing dropped."""
    inject(simulator, "malformed_record", count=1, path="/v2/users")
    records = list(client.iter_records(USERS, page_size=1000, paging="numbered"))
    assert len(records) == len(all_ids(simulator, USERS))
    assert any(not isinstance(r.get("id"), int) for r in records)


# -- paging, filters, fields ----------------------------------------------------------------


def test_keyset_paging_neither_skips_nor_repeats_under_drift(client, simulator):
    """Records inserted and deleted while pages are read: keyset paging stays exact."""
    inject(simulator, "drift", count=None)
    before = set(all_ids(simulator, TIMESHEETS))
    got = [r["id"] for r in client.iter_records(TIMESHEETS, page_size=100, fields=["id"])]
    after = set(all_ids(simulator, TIMESHEETS))
    assert len(got) == len(set(got)), "a record was returned twice"
    assert before & after <= set(got), "a record present throughout was skipped"


def test_numbered_paging_drifts_which_is_why_keyset_is_the_default(client, simulator):
    """The same drift makes numbered pages skip or repeat records."""
    inject(simulator, "drift", count=None)
    before = set(all_ids(simulator, TIMESHEETS))
    got = [
        r["id"]
        for r in client.iter_records(TIMESHEETS, page_size=100, fields=["id"], paging="numbered")
    ]
    after = set(all_ids(simulator, TIMESHEETS))
    assert len(got) != len(set(got)) or not (before & after <= set(got))


def test_filters_match_the_same_selection_done_locally(client, simulator):
    """Advanced filters select exactly the records a local filter over everything would."""
    everything = list(client.iter_records(TIMESHEETS, page_size=1000))
    dates = sorted({r["submitted_date"] for r in everything})
    low, high = dates[len(dates) // 3], dates[2 * len(dates) // 3]
    users = sorted({r["user_id"] for r in everything})[:3]
    selected = client.iter_records(
        TIMESHEETS,
        filters={"submitted_date__between": [low, high], "user_id__in": users},
        page_size=7,
    )
    local = [
        r["id"] for r in everything if low <= r["submitted_date"] <= high and r["user_id"] in users
    ]
    assert [r["id"] for r in selected] == local
    assert local, "the filter selected nothing: the test data no longer exercises it"


def test_gte_and_lt_select_a_half_open_window(client, simulator):
    """`__gte` / `__lt` on modified_time split the records without overlap or gap."""
    everything = list(client.iter_records(USERS, page_size=1000))
    times = sorted(r["modified_time"] for r in everything)
    pivot = times[len(times) // 2]
    early = list(client.iter_records(USERS, filters={"modified_time__lt": pivot}))
    late = list(client.iter_records(USERS, filters={"modified_time__gte": pivot}))
    assert sorted(r["id"] for r in early + late) == sorted(r["id"] for r in everything)
    assert early and late


def test_fields_selects_only_those_fields_plus_the_paging_key(client, simulator):
    """`fields` trims each record; keyset paging adds `id` back."""
    records = list(client.iter_records(USERS, fields=["email", "employee_id"]))
    assert records
    assert all(set(r) == {"id", "email", "employee_id"} for r in records)


def test_unknown_filter_operator_is_refused_before_any_request(client):
    """A typo in an operator fails locally with the list of valid operators."""
    with pytest.raises(InvalidRequestError, match="between"):
        list(client.iter_pages(USERS, filters={"modified_time__after": "2024-01-01"}))
    assert client.stats.requests == 0


def test_range_operator_needs_two_values():
    """`__between` with one value says it needs two."""
    with pytest.raises(InvalidRequestError, match="exactly two"):
        encode_filters({"submitted_date__between": ["2024-01-01"]})


def test_filter_values_are_encoded_as_the_api_expects():
    """Booleans, lists, dates and aware datetimes become the documented query strings."""
    from datetime import UTC, date, datetime

    params = encode_filters(
        {
            "active": True,
            "status__in": ["APPROVED", "PROCESSED"],
            "submitted_date__between": (date(2024, 1, 1), date(2024, 1, 31)),
            "modified_time__gte": datetime(2024, 1, 1, 12, tzinfo=UTC),
        }
    )
    assert params == {
        "active": "true",
        "status__in": "APPROVED,PROCESSED",
        "submitted_date__between": "2024-01-01,2024-01-31",
        "modified_time__gte": "2024-01-01T12:00:00.000Z",
    }


def test_server_refusal_of_a_filter_is_an_invalid_request(client):
    """A field the API does not know comes back as InvalidRequestError with its message."""
    with pytest.raises(InvalidRequestError, match="no_such_field"):
        list(client.iter_pages(USERS, filters={"no_such_field": "x"}))


def test_numbers_with_fractions_are_decimal(client):
    """JSON numbers with a fraction are parsed as Decimal, never float."""
    floats = []

    def walk(value):
        if isinstance(value, float):
            floats.append(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    records = list(client.iter_records(TIMESHEETS, page_size=1000))
    for record in records:
        walk(record)
    assert floats == []
    assert any(isinstance(r.get("latitude"), Decimal) for r in records)


def test_rate_limit_spaces_requests():
    """With a limit of 50 requests/s and no burst, 26 requests take at least half a second."""
    bucket = TokenBucket(50, burst=1)
    started = time.monotonic()
    for _ in range(26):
        bucket.acquire()
    assert time.monotonic() - started >= 0.49


# -- secrets ------------------------------------------------------------------------------


def test_secret_never_appears_in_logs_errors_or_repr(simulator, caplog):
    """Through retries, a token refresh and a failure, the secret is nowhere to be seen."""
    caplog.set_level(logging.DEBUG)
    client = AssignarClient(
        DEMO_CLIENT_ID,
        DEMO_CLIENT_SECRET,
        endpoints=Endpoints(simulator.api_url, simulator.token_url),
        retry=FAST_RETRY,
    )
    inject(simulator, "server_error", count=2)
    list(client.iter_pages(PROJECTS))
    httpx.post(f"{simulator.base_url}/_simulator/revoke-tokens").raise_for_status()
    list(client.iter_pages(PROJECTS))
    inject(simulator, "rotate_credentials")
    httpx.post(f"{simulator.base_url}/_simulator/revoke-tokens").raise_for_status()
    with pytest.raises(BadCredentialsError) as error:
        list(client.iter_pages(PROJECTS))
    client.close()
    seen = "\n".join(
        [caplog.text, repr(client), str(error.value), repr(error.value), repr(vars(client))]
    )
    assert DEMO_CLIENT_SECRET not in seen
    assert caplog.text, "nothing was logged, so the check above proves nothing"

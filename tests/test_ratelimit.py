"""The request rate per Assignar account holds across processes: a token bucket in the Pay database
(SQLite and PostgreSQL), two processes hammering the simulator at once."""

from __future__ import annotations

import multiprocessing
import time

import pytest

from assignar_pipeline.client import USERS, AssignarClient, TokenBucket
from assignar_pipeline.cursor import first_page
from assignar_pipeline.pay.database import create_pay_engine
from assignar_pipeline.ratelimit import SharedTokenBucket, account_key
from assignar_pipeline.regions import Endpoints

RATE, REQUESTS_PER_PROCESS = 5.0, 8


def _hammer(pay_url: str | None, api_url: str, token_url: str) -> list[float]:
    """One process: a client on the shared bucket (or, without a Pay URL, its own), firing
    requests as fast as the limiter allows; returns when each request was let through."""
    stamps: list[float] = []
    if pay_url:
        engine = create_pay_engine(pay_url)
        limiter = SharedTokenBucket(engine, account_key("au", "demo"), RATE, burst=1)
    else:
        limiter = TokenBucket(RATE, burst=1)

    class Recording:
        def acquire(self) -> None:
            limiter.acquire()
            stamps.append(time.time())

    with AssignarClient(
        "demo-client",
        "demo-secret-change-me",
        "au",
        endpoints=Endpoints(api_url, token_url),
        rate_limiter=Recording(),
    ) as client:
        for _ in range(REQUESTS_PER_PROCESS - 1):  # the token request is the first one
            first_page(client, USERS, {}, sort="id", page_size=1)
    return stamps


def _busiest_second(stamps: list[float]) -> int:
    stamps = sorted(stamps)
    return max(sum(1 for s in stamps if start <= s < start + 1.0) for start in stamps)


def _run_two(pay_url: str | None, simulator) -> list[float]:
    args = (pay_url, simulator.api_url, simulator.token_url)
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        results = pool.starmap(_hammer, [args, args])
    return [s for stamps in results for s in stamps]


@pytest.mark.parametrize("pay_engine", ["sqlite", "postgresql"], indirect=True)
def test_two_processes_together_stay_within_the_accounts_rate(pay_engine, simulator):
    """Two processes sharing the account's bucket in the Pay database never exceed, together,
    the configured rate plus its burst in any one second."""
    url = pay_engine.url.render_as_string(hide_password=False)
    shared = _run_two(url, simulator)
    assert len(shared) == 2 * REQUESTS_PER_PROCESS
    assert _busiest_second(shared) <= RATE + 1  # rate + burst (1)
    span = max(shared) - min(shared)
    assert span >= (2 * REQUESTS_PER_PROCESS - 1 - 1) / RATE - 0.05


def test_two_private_buckets_let_the_account_see_both_rates(simulator):
    """The control: each process limiting itself alone sends the account twice the rate."""
    private = _run_two(None, simulator)
    assert _busiest_second(private) > RATE + 1

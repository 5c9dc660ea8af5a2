"""A request-rate limit per Assignar account that holds across runs and processes.

A token bucket kept in the Pay database (`rate_limit_bucket`, one row per account): every request
first reserves a token in a short transaction — the row is locked (`SELECT … FOR UPDATE` on
PostgreSQL; SQLite's `BEGIN IMMEDIATE` serializes writers anyway), refilled for the time elapsed,
and decremented, possibly below zero. A negative balance is the queue of reservations ahead, so the
caller sleeps `-tokens / rate` after committing, never while holding the lock. Any number of
processes sharing the database therefore send at most `burst + rate × t` requests in any `t`
seconds. Time is the wall clock (`time.time`), shared by processes on one machine and, with NTP,
close enough across machines for a limit of a few requests per second.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine

from assignar_pipeline.pay.tables import rate_limit_bucket


def account_key(region: str, client_id: str) -> str:
    """The bucket of one Assignar account: its region and client id."""
    return f"{region}:{client_id}"[: rate_limit_bucket.c.account.type.length]


class SharedTokenBucket:
    """`rate` requests per second per account, bursts up to `burst`, across every process."""

    def __init__(
        self,
        engine: Engine,
        account: str,
        rate: float,
        burst: int | None = None,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive (requests per second)")
        self.engine = engine
        self.account = account
        self.rate = rate
        self.capacity = float(burst or max(1, int(rate)))
        self._clock = clock
        self._sleep = sleep
        self.waited = 0.0  # seconds this process slept for the limit (for metadata and tests)

    def acquire(self) -> None:
        wait = self.reserve()
        if wait > 0:
            self.waited += wait
            self._sleep(wait)

    def reserve(self) -> float:
        """Take one token; return how long to wait before using it."""
        with self.engine.begin() as conn:
            now = self._clock()
            insert = (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(
                rate_limit_bucket
            )
            conn.execute(
                insert.values(
                    account=self.account, tokens=self.capacity, updated_at=now
                ).on_conflict_do_nothing(index_elements=["account"])
            )
            select = sa.select(rate_limit_bucket.c.tokens, rate_limit_bucket.c.updated_at).where(
                rate_limit_bucket.c.account == self.account
            )
            if conn.dialect.name == "postgresql":
                select = select.with_for_update()
            tokens, updated_at = conn.execute(select).one()
            # A clock that stepped back must not mint tokens, nor let a reservation expire early.
            elapsed = max(0.0, now - updated_at)
            tokens = min(self.capacity, tokens + elapsed * self.rate) - 1.0
            conn.execute(
                rate_limit_bucket.update()
                .where(rate_limit_bucket.c.account == self.account)
                .values(tokens=tokens, updated_at=max(now, updated_at))
            )
        return -tokens / self.rate if tokens < 0 else 0.0

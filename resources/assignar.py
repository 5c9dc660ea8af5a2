"""The Assignar API as a Dagster resource: how runs talk to Assignar, not as whom.

Credentials belong to each connection and are resolved by reference (the name of the variable
that holds the secret) where the run executes, so no secret enters run config or the database.
"""

import os

import dagster as dg
from pydantic import Field
from sqlalchemy.engine import Engine

from assignar_pipeline.client import AssignarClient, RateLimiter, RetryPolicy
from assignar_pipeline.connections import ConnectionRow, secret_for, secret_from_env
from assignar_pipeline.ratelimit import SharedTokenBucket, account_key
from assignar_pipeline.settings import Secret, endpoints_for


class AssignarResource(dg.ConfigurableResource):
    """Limits and timeouts for Assignar requests; URLs come from the region (or ASSIGNAR_*_URL)."""

    max_requests_per_second: float | None = Field(
        default=None,
        description="Request-rate limit per Assignar account, shared by every run and process "
        "through the Pay database; default ASSIGNAR_MAX_REQUESTS_PER_SECOND, else none.",
    )
    timeout_seconds: float = Field(default=30.0, description="Per-request timeout.")
    retry_max_seconds: float = Field(
        default=300.0,
        description="How long one request may keep retrying 429s, 5xx, timeouts and dropped "
        "connections (backoff with jitter) before the connection's sync fails with the error.",
    )

    def client_for(self, connection: ConnectionRow, engine: Engine | None = None) -> AssignarClient:
        """A client for one connection, its secret read from the variable the connection names.

        With the Pay `engine`, the rate limit is the account's bucket in the Pay database, which
        holds across concurrent runs and processes; without it, a limit for this client alone.
        """
        limiter = None
        rate = self.rate()
        if rate and engine is not None:
            key = account_key(connection.region, connection.client_id)
            limiter = SharedTokenBucket(engine, key, rate)
        return self._client(
            connection.region, connection.client_id, secret_for(connection), limiter
        )

    def rate(self) -> float | None:
        return (
            self.max_requests_per_second
            or float(os.environ.get("ASSIGNAR_MAX_REQUESTS_PER_SECOND") or 0)
            or None
        )

    def open(self, region: str, client_id: str, secret_env: str) -> AssignarClient:
        """A client for explicit credentials (the test-connection job)."""
        return self._client(region, client_id, secret_from_env(secret_env))

    def _client(
        self, region: str, client_id: str, secret: Secret, limiter: RateLimiter | None = None
    ) -> AssignarClient:
        return AssignarClient(
            client_id,
            secret,
            region,
            endpoints=endpoints_for(region),
            timeout=self.timeout_seconds,
            retry=RetryPolicy(max_total=self.retry_max_seconds),
            rate_limiter=limiter,
            max_requests_per_second=None if limiter else self.rate(),
        )

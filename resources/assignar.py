"""The Assignar API as a Dagster resource: how runs talk to Assignar, not as whom.

Credentials belong to each connection and are resolved by reference (the name of the variable
that holds the secret) where the run executes, so no secret enters run config or the database.
"""

import dagster as dg
from pydantic import Field
from sqlalchemy.engine import Engine

from assignar_pipeline.client import AssignarClient, RetryPolicy
from assignar_pipeline.connections import (
    ConnectionRow,
    open_client,
    request_rate,
    secret_from_env,
)
from assignar_pipeline.regions import endpoints_for


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
        return open_client(
            connection,
            engine,
            rate=self.rate(),
            timeout=self.timeout_seconds,
            retry_max_seconds=self.retry_max_seconds,
        )

    def rate(self) -> float | None:
        return self.max_requests_per_second or request_rate()

    def open(self, region: str, client_id: str, secret_env: str) -> AssignarClient:
        """A client for explicit credentials (the test-connection job)."""
        return AssignarClient(
            client_id,
            secret_from_env(secret_env),
            region,
            endpoints=endpoints_for(region),
            timeout=self.timeout_seconds,
            retry=RetryPolicy(max_total=self.retry_max_seconds),
            max_requests_per_second=self.rate(),
        )

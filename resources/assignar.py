"""The Assignar API as a Dagster resource: how runs talk to Assignar, not as whom.

Credentials belong to each connection and are resolved by reference (the name of the variable
that holds the secret) where the run executes, so no secret enters run config or the database.
"""

import os

import dagster as dg
from pydantic import Field

from assignar_pipeline.client import AssignarClient
from assignar_pipeline.connections import ConnectionRow, MissingSecretError, secret_for
from assignar_pipeline.settings import Secret, endpoints_for


class AssignarResource(dg.ConfigurableResource):
    """Limits and timeouts for Assignar requests; URLs come from the region (or ASSIGNAR_*_URL)."""

    max_requests_per_second: float | None = Field(
        default=None, description="Request-rate limit per Assignar account (none by default)."
    )
    timeout_seconds: float = Field(default=30.0, description="Per-request timeout.")

    def client_for(self, connection: ConnectionRow) -> AssignarClient:
        """A client for one connection, its secret read from the variable the connection names."""
        return self._client(connection.region, connection.client_id, secret_for(connection))

    def open(self, region: str, client_id: str, secret_env: str) -> AssignarClient:
        """A client for explicit credentials (the test-connection job)."""
        secret = os.environ.get(secret_env)
        if not secret:
            raise MissingSecretError(
                f"Environment variable {secret_env} is not set: put the client secret in it."
            )
        return self._client(region, client_id, Secret(secret))

    def _client(self, region: str, client_id: str, secret: Secret) -> AssignarClient:
        return AssignarClient(
            client_id,
            secret,
            region,
            endpoints=endpoints_for(region),
            timeout=self.timeout_seconds,
            max_requests_per_second=self.max_requests_per_second,
        )

"""The Assignar API as a Dagster resource: typed config, secret by environment variable."""

import dagster as dg
from pydantic import Field, PrivateAttr

from assignar_pipeline.client import AssignarClient
from assignar_pipeline.connections import ConnectionRow, secret_for
from assignar_pipeline.settings import Region, Secret, endpoints_for


class AssignarResource(dg.ConfigurableResource):
    """One Assignar account reached with OAuth2 client credentials."""

    region: str = Field(default=Region.NA.value, description="na (North America/Europe) or au.")
    client_id: str = Field(description="Client id from Assignar Settings → API.")
    client_secret: str = Field(description="Client secret; always set it with dg.EnvVar.")
    max_requests_per_second: float | None = Field(
        default=None, description="Request-rate limit for this account (none by default)."
    )

    _client: AssignarClient | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._client = AssignarClient(
            self.client_id,
            Secret(self.client_secret),
            self.region,
            endpoints=endpoints_for(self.region),
            max_requests_per_second=self.max_requests_per_second,
        )

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._client is not None:
            self._client.close()

    def client_for(self, connection: ConnectionRow) -> AssignarClient:
        """A client for one connection, its secret read from the variable the connection names."""
        return AssignarClient(
            connection.client_id,
            secret_for(connection),
            connection.region,
            endpoints=endpoints_for(connection.region),
            max_requests_per_second=self.max_requests_per_second,
        )

    @property
    def client(self) -> AssignarClient:
        if self._client is None:
            raise dg.DagsterInvariantViolationError("AssignarResource used outside a run")
        return self._client

"""Connection jobs for the Launchpad: "Test connection", and connecting a Pay team to Assignar."""

import dagster as dg
from pydantic import Field

from assignar_pipeline.connections import (
    ConnectionRefused,
    ConnectionRequest,
    ConnectionsError,
    connect,
)
from assignar_pipeline.errors import AssignarError
from resources.assignar import AssignarResource
from resources.pay import PayDatabaseResource


class TestConnectionConfig(dg.Config):
    """The options of `assignar-pipeline test-connection`."""

    region: str = Field(default="na", description="'na' (North America/Europe) or 'au' (AU/NZ).")
    client_id: str = Field(description="Assignar client id (Assignar → Settings → API).")
    secret_env: str = Field(
        default="ASSIGNAR_CLIENT_SECRET",
        description="NAME of the variable holding the client secret (never the secret itself).",
    )


@dg.op
def check_assignar_connection(
    context: dg.OpExecutionContext, config: TestConnectionConfig, assignar: AssignarResource
) -> None:
    """Fetch a token and one record of each imported resource; fail with what to fix."""
    try:
        with assignar.open(config.region, config.client_id, config.secret_env) as client:
            readable = client.check_connection()
    except (AssignarError, ConnectionsError) as exc:
        # The message first in the run view, as `test-connection` prints it: no client traceback.
        raise dg.Failure(description=f"Connection failed: {exc}", allow_retries=False) from None
    context.log.info(f"Connection successful; readable: {', '.join(readable)}")


@dg.job(description="Check the Assignar credentials, API access and that data can be read.")
def test_assignar_connection() -> None:
    check_assignar_connection()


class ConnectAssignarConfig(dg.Config):
    """The options of `assignar-pipeline connect`; the secret itself is never part of them."""

    key: str = Field(description="Name of the connection, used in run config (e.g. 'acme-au').")
    team_id: int = Field(description="Pay team to connect (a team, not a personal account).")
    user_email: str = Field(
        description="Pay user who connects; needs the integrations.manage permission on the team."
    )
    region: str = Field(
        description="Assignar region: 'na' (North America/Europe) or 'au' (Australia/NZ)."
    )
    client_id: str = Field(description="Assignar client id (Assignar → Settings → API).")
    client_secret_ref: str = Field(
        description="NAME of the environment variable that holds the client secret where the "
        "pipeline runs (e.g. ASSIGNAR_CLIENT_SECRET). Never the secret itself."
    )
    timezone: str = Field(description="IANA zone deciding work dates, e.g. Australia/Sydney.")
    import_timesheets: bool = Field(
        default=True, description="Import timesheets (the initial import covers 4 weeks)."
    )
    import_orders: bool = Field(
        default=False, description="Import confirmed orders (needs job costing on the team)."
    )


@dg.op
def connect_pay_team(
    context: dg.OpExecutionContext, config: ConnectAssignarConfig, pay: PayDatabaseResource
) -> None:
    """Run Pay's checks and Assignar's test connection, then store the connection."""
    request = ConnectionRequest(**config.model_dump())
    try:
        connection_id = connect(pay.engine, request)
    except ConnectionRefused as exc:
        raise dg.Failure(description=f"Refused: {exc.reason}", allow_retries=False) from None
    context.log.info(
        f"Connected {request.key} (connection id {connection_id}, Pay team {request.team_id}, "
        f"region {request.region})"
    )


@dg.job(description="Connect a Pay team to an Assignar account, after the same checks as the CLI.")
def connect_assignar() -> None:
    connect_pay_team()

"""`assignar-pipeline`: the command line for operators (test a connection, run the simulator)."""

from __future__ import annotations

import os
import sys

import click

from assignar_pipeline.client import AssignarClient
from assignar_pipeline.errors import AssignarError
from assignar_pipeline.settings import Region, Secret, endpoints_for
from assignar_pipeline.simulator.cli import simulator


@click.group()
def main() -> None:
    """Assignar → Pay integration."""


main.add_command(simulator)


@main.command("test-connection")
@click.option(
    "--region",
    type=click.Choice([r.value for r in Region]),
    default=Region.NA.value,
    show_default=True,
    envvar="ASSIGNAR_REGION",
    help="na = North America/Europe, au = Australia/New Zealand.",
)
@click.option(
    "--client-id", envvar="ASSIGNAR_CLIENT_ID", required=True, help="From Settings → API."
)
@click.option(
    "--secret-env",
    default="ASSIGNAR_CLIENT_SECRET",
    show_default=True,
    metavar="NAME",
    help="Name of the environment variable that holds the client secret (never the secret).",
)
def test_connection(region: str, client_id: str, secret_env: str) -> None:
    """Check the credentials, API access and that data can be read; exit 0 only on success."""
    secret = os.environ.get(secret_env)
    if not secret:
        _fail(f"Environment variable {secret_env} is not set: put the client secret in it.")
    endpoints = endpoints_for(region)
    try:
        with AssignarClient(client_id, Secret(secret), region, endpoints=endpoints) as client:
            resources = client.check_connection()
    except AssignarError as exc:
        _fail(f"Connection failed: {exc}")
    click.echo("Connection successful")
    click.echo(f"  region: {Region(region).label} ({endpoints.api_url})")
    click.echo(f"  readable: {', '.join(resources)}")


def _fail(message: str) -> None:
    click.echo(message, err=True)
    sys.exit(1)


if __name__ == "__main__":
    main()

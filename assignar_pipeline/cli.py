"""`assignar-pipeline`: the command line for operators.

Prepare the Pay database, connect Pay teams to Assignar accounts, test a connection, run the
simulator. Every error a user can meet prints one message and exits 1, never a traceback.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import click
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from assignar_pipeline import cli_sync
from assignar_pipeline.client import AssignarClient
from assignar_pipeline.connections import (
    ConnectionRequest,
    ConnectionsError,
    all_connections,
    connect,
    disconnect,
)
from assignar_pipeline.errors import AssignarError
from assignar_pipeline.pay import tables
from assignar_pipeline.pay.database import create_pay_engine, database_url, migrate
from assignar_pipeline.pay.seed import seed_demo
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


@main.group()
def pay() -> None:
    """The Pay database (PAY_DATABASE_URL, default: the SQLite file .data/pay.db)."""


@pay.command("init")
@click.option("--demo", is_flag=True, help="Also add the demo Pay team and print its id.")
def pay_init(demo: bool) -> None:
    """Create or upgrade the Pay tables; with --demo, seed the demo team (idempotent)."""
    engine = _pay_engine()
    try:
        click.echo(f"Pay database ready: {engine.url.render_as_string(hide_password=True)}")
        if demo:
            click.echo(f"Demo team id: {seed_demo(engine)}")
    except sa.exc.SQLAlchemyError as exc:
        _fail(f"Pay database error: {_db_message(exc)}")
    finally:
        engine.dispose()


@main.command("connect")
@click.option("--key", required=True, help="Name of the connection, used in run config.")
@click.option("--team-id", required=True, type=int, help="Pay team to connect.")
@click.option(
    "--user-email",
    required=True,
    help="Pay user who connects; needs the integrations.manage permission on the team.",
)
@click.option(
    "--region",
    required=True,
    type=click.Choice([r.value for r in Region]),
    help="Assignar region: na = North America/Europe, au = Australia/New Zealand.",
)
@click.option("--client-id", required=True, help="Assignar client id (Settings → API).")
@click.option(
    "--secret-env",
    required=True,
    metavar="NAME",
    help="Name of the environment variable holding the client secret (stored; the secret is not).",
)
@click.option(
    "--timezone", required=True, help="IANA zone deciding work dates, e.g. Australia/Sydney."
)
@click.option(
    "--timesheets/--no-timesheets",
    default=True,
    show_default=True,
    help="Import timesheets (the initial import covers the last 4 weeks).",
)
@click.option(
    "--orders/--no-orders",
    default=False,
    show_default=True,
    help="Import confirmed orders (needs job costing on the team).",
)
def connect_command(
    key: str,
    team_id: int,
    user_email: str,
    region: str,
    client_id: str,
    secret_env: str,
    timezone: str,
    timesheets: bool,
    orders: bool,
) -> None:
    """Check and test a connection, then store it (again: update and reactivate it)."""
    request = ConnectionRequest(
        key=key,
        team_id=team_id,
        user_email=user_email,
        region=region,
        client_id=client_id,
        client_secret_ref=secret_env,
        timezone=timezone,
        import_timesheets=timesheets,
        import_orders=orders,
    )
    engine = _pay_engine()
    try:
        connection_id = connect(engine, request)
    except ConnectionsError as exc:
        _fail(f"Refused: {exc}")
    except sa.exc.SQLAlchemyError as exc:
        _fail(f"Pay database error: {_db_message(exc)}")
    finally:
        engine.dispose()
    click.echo(f"Connected {key}")
    click.echo(f"  connection id {connection_id}, Pay team {team_id}, region {region}")


@main.command("disconnect")
@click.option("--key", required=True, help="The connection to disconnect.")
def disconnect_command(key: str) -> None:
    """Stop syncing a connection; everything it imported stays in Pay."""
    engine = _pay_engine()
    try:
        row = disconnect(engine, key)
    except ConnectionsError as exc:
        _fail(str(exc))
    except sa.exc.SQLAlchemyError as exc:
        _fail(f"Pay database error: {_db_message(exc)}")
    finally:
        engine.dispose()
    click.echo(f"Disconnected {key} (imported data kept)")
    if row.disconnected_at is not None:
        click.echo(f"  since {row.disconnected_at:%Y-%m-%d %H:%M} UTC")


@main.command("connections")
def connections_command() -> None:
    """List the connections: key, team, region, client id, status, created."""
    engine = _pay_engine()
    try:
        rows = all_connections(engine)
        with engine.connect() as conn:
            teams = dict(conn.execute(sa.select(tables.team.c.id, tables.team.c.name)).all())
    except sa.exc.SQLAlchemyError as exc:
        _fail(f"Pay database error: {_db_message(exc)}")
    finally:
        engine.dispose()
    if not rows:
        click.echo("No connections yet: create one with `assignar-pipeline connect`.")
        return
    header = ("key", "team", "region", "client id", "status", "created")
    lines = [
        (
            r.key,
            f"{r.team_id} {teams.get(r.team_id, '?')}",
            r.region,
            r.client_id,
            r.status,
            f"{r.created_at:%Y-%m-%d %H:%M} UTC",
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    for row in [header, *lines]:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        click.echo("  ".join(cells).rstrip())


def _pay_engine() -> Engine:
    """The Pay database from PAY_DATABASE_URL, migrated to the newest schema."""
    try:
        engine = create_pay_engine(database_url())
        migrate(engine)
    except sa.exc.SQLAlchemyError as exc:
        _fail(f"Cannot open the Pay database: {_db_message(exc)} (check PAY_DATABASE_URL).")
    return engine


def _db_message(exc: sa.exc.SQLAlchemyError) -> str:
    """The driver's own first line, without SQLAlchemy's statement dump and parameters."""
    original = getattr(exc, "orig", None) or exc
    return str(original).strip().splitlines()[0] if str(original).strip() else type(exc).__name__


def _fail(message: str) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(1)


# Sync operations: settings, sync-log, bulk-import (and status, unless defined above).
cli_sync.register(main)

if __name__ == "__main__":
    main()

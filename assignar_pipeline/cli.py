"""`assignar-pipeline`: the command line for operators.

Prepare the Pay database, connect Pay teams to Assignar accounts, test a connection, run the
simulator. Every error a user can meet prints one message and exits 1, never a traceback.
"""

from __future__ import annotations

import sys
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import NoReturn

import click
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from assignar_pipeline import cli_preview, cli_sync
from assignar_pipeline.client import AssignarClient
from assignar_pipeline.connections import (
    ConnectionRequest,
    ConnectionsError,
    all_connections,
    connect,
    disconnect,
    named_connections,
    secret_from_env,
)
from assignar_pipeline.errors import AssignarError
from assignar_pipeline.export import ExportRefused
from assignar_pipeline.pay import tables
from assignar_pipeline.pay.database import create_pay_engine, database_url, migrate
from assignar_pipeline.pay.seed import seed_demo
from assignar_pipeline.reconcile.conflicts import KIND_LABELS, KIND_OPTIONS, kind_named
from assignar_pipeline.reconcile.policy import set_thresholds, thresholds_for
from assignar_pipeline.reconcile.queries import (
    STATUSES,
    ConflictView,
    list_conflicts,
    show_conflict,
)
from assignar_pipeline.reconcile.resolve import Choice, ResolutionError, resolve_conflicts
from assignar_pipeline.regions import Region, endpoints_for
from assignar_pipeline.simulator.cli import simulator
from assignar_pipeline.status import connection_status
from assignar_pipeline.windows import format_window


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
    try:
        secret = secret_from_env(secret_env)
    except ConnectionsError as exc:
        _fail(str(exc))
    endpoints = endpoints_for(region)
    try:
        with AssignarClient(client_id, secret, region, endpoints=endpoints) as client:
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
@click.option(
    "--export",
    "export_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="First write everything the connection holds to this zip (see `export`).",
)
def disconnect_command(key: str, export_path: Path | None) -> None:
    """Stop syncing a connection; everything it imported stays in Pay."""
    if export_path is not None:
        try:
            cli_sync.take_export([key], export_path, None)
        except ExportRefused as exc:
            _fail(f"Not disconnected: {exc}")
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


@main.command("status")
@click.option("--connection", "key", help="One connection (default: all).")
def status_command(key: str | None) -> None:
    """Each connection: Connected, Sync Warning (open conflicts) or Error (its last sync failed)."""
    engine = _pay_engine()
    try:
        rows = all_connections(engine) if key is None else named_connections(engine, [key])
        with engine.connect() as conn:
            statuses = [connection_status(conn, r.id) for r in rows]
            details = cli_sync.sync_details(conn, [r.id for r in rows])
    except ConnectionsError as exc:
        _fail(str(exc))
    except sa.exc.SQLAlchemyError as exc:
        _fail(f"Pay database error: {_db_message(exc)}")
    finally:
        engine.dispose()
    if not statuses:
        click.echo("No connections yet: create one with `assignar-pipeline connect`.")
    for s in statuses:
        click.echo(f"{s.key}: {s.describe()}")
        if s.held:
            held = ", ".join(f"{n} {entity}s" for entity, n in sorted(s.held.items()))
            click.echo(f"  held: {held}")
        cli_sync.echo_sync_details(details[s.connection_id])  # last/next sync, counts, error


# -- conflicts ----------------------------------------------------------------------------------


@main.group()
def conflicts() -> None:
    """Reconciliation: Duplicate Project, Worker Mismatch, Rate Difference, adjustments."""


@conflicts.command("list")
@click.option("--connection", "key", help="One connection (default: all).")
@click.option(
    "--kind",
    metavar=f"[{'|'.join(KIND_OPTIONS)}]",
    callback=lambda _ctx, _param, value: _kind(value),
    help="One kind of conflict.",
)
@click.option(
    "--status", type=click.Choice(STATUSES), default="open", show_default=True, help="Which."
)
def conflicts_list(key: str | None, kind: str | None, status: str) -> None:
    """One line per conflict: id, connection, kind, what it holds, and what disagrees."""
    views = _with_engine(
        lambda conn: list_conflicts(conn, connection_key=key, kind=kind, status=status)
    )
    if not views:
        click.echo(f"No {'' if status == 'all' else status + ' '}conflicts.")
        return
    for v in views:
        held = ", ".join(f"{n} {e}s" for e, n in sorted(v.held.items())) or "nothing"
        state = "" if status == "open" else f" [{v.status}]"
        click.echo(f"{v.id[:8]}  {v.connection_key}  {v.label}{state}  (holds {held})")
        click.echo(f"    {v.summary}")
    click.echo(
        "Details: `assignar-pipeline conflicts show ID`; decide: `... conflicts resolve ID CHOICE`."
    )


def _kind(value: str | None) -> str | None:
    if value is None:
        return None
    kind = kind_named(value)
    if kind is None:
        raise click.BadParameter(f"{value!r} is not a kind of conflict: use one of "
                                 f"{', '.join(KIND_OPTIONS)}.")  # fmt: skip
    return kind


@conflicts.command("show")
@click.argument("conflict_id")
def conflicts_show(conflict_id: str) -> None:
    """Both sides, the candidates, what the conflict holds, and how it was resolved."""
    _echo_view(_with_engine(lambda conn: show_conflict(conn, conflict_id)))


@conflicts.command("resolve")
@click.argument("conflict_id")
@click.argument("choice")
@click.option("--by", "decided_by", required=True, help="Email of the Pay user who decides.")
@click.option("--target", type=int, help="merge: Pay project id; map: Pay employee id.")
@click.option(
    "--code", help="create_new: the Pay project's code ('' for none; default Assignar's)."
)
@click.option("--employee-number", help="create_employee: Pay employee number ('' for none).")
@click.option("--rate", help="set_rate: the rate, e.g. 45.50.")
@click.option(
    "--scope",
    type=click.Choice(["going_forward", "occurrence"]),
    help="Rates: a new Pay rate from --effective-from (default), or only this disagreement.",
)
@click.option(
    "--effective-from",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="going_forward: first day of the new rate (default: the earliest held work date).",
)
@click.option("--note", help="Why (kept with the resolution).")
def conflicts_resolve(
    conflict_id: str,
    choice: str,
    decided_by: str,
    target: int | None,
    code: str | None,
    employee_number: str | None,
    rate: str | None,
    scope: str | None,
    effective_from,
    note: str | None,
) -> None:
    """Decide a conflict: merge | create_new (projects); map | create_employee | ignore
    (workers); use_assignar_rate | keep_pay_rate | set_rate (rates); accept_adjustment |
    reject_adjustment (timesheets Pay already processed). Held records load at once."""
    request = Choice(
        conflict=conflict_id,
        choice=choice,
        target=target,
        code=code,
        employee_number=employee_number,
        rate=rate,  # type: ignore[arg-type]  # checked by resolve
        scope=scope,
        effective_from=effective_from.date() if effective_from else None,
        note=note,
    )
    engine = _pay_engine()
    try:
        result = resolve_conflicts(engine, [request], decided_by, run_id="cli-resolve")
    except ResolutionError as exc:
        _fail(str(exc))
    except sa.exc.SQLAlchemyError as exc:
        _fail(f"Pay database error: {_db_message(exc)}")
    finally:
        engine.dispose()
    for r in result.resolved:
        verb = "Already resolved" if r.already else "Resolved"
        click.echo(
            f"{verb} {r.conflict_id[:8]} ({KIND_LABELS[r.kind]}) as {r.decision}: {r.effect}"
        )
    for key, days in result.unblocked.items():
        click.echo(
            f"  {key}: loaded {result.released[key]} held record(s) of {len(days)} date(s) "
            f"of {format_window(days[0], days[-1] + timedelta(days=1))}"
        )


@conflicts.command("settings")
@click.option("--connection", "key", required=True, help="The connection.")
@click.option("--project-threshold", type=float, help="Similar project names from (0-1].")
@click.option("--worker-threshold", type=float, help="Similar worker names from (0-1].")
@click.option("--rate-tolerance", help="A rate difference above this is a conflict (default 0).")
def conflicts_settings(
    key: str, project_threshold: float | None, worker_threshold: float | None, rate_tolerance
) -> None:
    """Show (or change) a connection's matching thresholds and rate tolerance."""
    engine = _pay_engine()
    try:
        row = next((r for r in all_connections(engine) if r.key == key), None)
        if row is None:
            _fail(f"No connection has the key {key!r}: see `assignar-pipeline connections`.")
        with engine.begin() as conn:
            if project_threshold is None and worker_threshold is None and rate_tolerance is None:
                limits = thresholds_for(conn, row.id)
            else:
                try:
                    tolerance = None if rate_tolerance is None else Decimal(rate_tolerance)
                    limits = set_thresholds(
                        conn,
                        row.id,
                        project_name=project_threshold,
                        worker_name=worker_threshold,
                        rate_tolerance=tolerance,
                    )
                except (ValueError, InvalidOperation) as exc:
                    _fail(f"Not changed: {exc}")
    finally:
        engine.dispose()
    click.echo(f"{key}: project names from {limits.project_name}, worker names from "
               f"{limits.worker_name}, rate tolerance {limits.rate_tolerance}")  # fmt: skip


def _with_engine(read):
    engine = _pay_engine()
    try:
        with engine.connect() as conn:
            return read(conn)
    except ResolutionError as exc:
        _fail(str(exc))
    except sa.exc.SQLAlchemyError as exc:
        _fail(f"Pay database error: {_db_message(exc)}")
    finally:
        engine.dispose()


def _echo_view(v: ConflictView) -> None:
    click.echo(f"{v.label} {v.id}")
    click.echo(f"  connection {v.connection_key}, {v.subject}, {v.status}")
    seen = f", last seen {v.last_seen_at:%Y-%m-%d %H:%M}" if v.last_seen_at else ""
    click.echo(f"  first seen {v.first_seen_at:%Y-%m-%d %H:%M} UTC{seen}")
    click.echo(f"  {v.summary}")
    for side in ("assignar", "pay", "employee", "timesheet"):
        if side in v.details:
            click.echo(f"  {side}: {_flat(v.details[side])}")
    if v.held:
        held = ", ".join(f"{n} {e}s" for e, n in sorted(v.held.items()))
        dates = f" of {_days(v.held_dates)}" if v.held_dates else ""
        click.echo(f"  holds: {held}{dates}")
    if v.candidates:
        click.echo("  candidates:")
        for c in v.candidates:
            extra = {k: c[k] for k in c if k not in ("pay_id", "score", "rule", "name") and c[k]}
            click.echo(
                f"    #{c['pay_id']} {c['name']!r} score {c['score']} ({c['rule']}) {_flat(extra)}"
            )
    if v.resolution:
        r = v.resolution
        when = f"{r['decided_at']:%Y-%m-%d %H:%M} UTC"
        click.echo(f"  resolved as {r['decision']} by {r['decided_by']} on {when}")
        if r["note"]:
            click.echo(f"  note: {r['note']}")
    elif v.status == "open":
        click.echo(f"  choices: {', '.join(v.choices)}")
        click.echo(f"  e.g. {v.example}")


def _days(first_and_last: tuple[date, date]) -> str:
    first, last = first_and_last
    return format_window(first, last + timedelta(days=1))


def _flat(values: dict) -> str:
    return ", ".join(f"{k} {val}" for k, val in values.items() if val not in (None, ""))


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
# Before big changes: preview an import, export a connection's data.
cli_preview.register(main)

if __name__ == "__main__":
    main()

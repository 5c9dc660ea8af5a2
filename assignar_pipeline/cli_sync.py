"""Sync operations on the command line: `settings`, `sync-log`, `bulk-import` (and the sync part
of `status`). Registered on `assignar-pipeline` by `cli.py`; every error a user can meet prints
one message and exits 1.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import NoReturn

import click
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from assignar_pipeline.bulk import (
    BulkImport,
    BulkImportError,
    date_range,
    graphql_request,
    launch,
    local_today,
    one_range,
    parse_at,
    queue,
)
from assignar_pipeline.connections import (
    ConnectionsError,
    active_connections,
    all_connections,
    named_connections,
)
from assignar_pipeline.export import ExportRefused, ExportResult, export_connections
from assignar_pipeline.extract import Scope, ScopeError, check_scope
from assignar_pipeline.pay.database import create_pay_engine, database_url, migrate
from assignar_pipeline.status import SyncStatus, sync_log_rows, sync_status
from assignar_pipeline.sync_settings import (
    SettingsChange,
    SettingsError,
    batch_size,
    change_settings,
    read_settings,
    set_batch_size,
)
from assignar_pipeline.windows import format_window

ON_OFF = click.Choice(["on", "off"])


def _engine() -> Engine:
    try:
        engine = create_pay_engine(database_url())
        migrate(engine)
    except sa.exc.SQLAlchemyError as exc:
        _fail(f"Cannot open the Pay database: {_first_line(exc)} (check PAY_DATABASE_URL).")
    return engine


def _first_line(exc: Exception) -> str:
    original = getattr(exc, "orig", None) or exc
    text = str(original).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _fail(message: str) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(1)


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


# -- settings -----------------------------------------------------------------------------------


@click.command("settings")
@click.option("--key", help="The connection to change or show (default: show all).")
@click.option("--frequency", type=click.Choice(["hourly", "daily", "weekly"]))
@click.option("--time", "time_", metavar="HH:MM", help="Preferred local time (daily, weekly).")
@click.option("--weekday", metavar="DAY", help="Weekly: mon..sun or 1 (Monday)..7.")
@click.option("--timesheets", type=ON_OFF, help="Auto-sync timesheets.")
@click.option("--orders", type=ON_OFF, help="Auto-sync orders (needs job costing).")
@click.option("--lookback-days", type=int, help="Days each sync re-reads to catch deletes.")
@click.option("--notify", metavar="EMAILS", help="Recipients, comma-separated ('' for nobody).")
@click.option(
    "--webhook", metavar="URL", help="Webhook URL, env:NAME for one holding a token, '' to remove."
)
@click.option("--batch-size", type=int, help="Deployment-wide: connections per sync run.")
def settings_command(
    key: str | None,
    frequency: str | None,
    time_: str | None,
    weekday: str | None,
    timesheets: str | None,
    orders: str | None,
    lookback_days: int | None,
    notify: str | None,
    webhook: str | None,
    batch_size: int | None,
) -> None:
    """Show or change when connections sync, what, and whom they notify."""
    change = SettingsChange(
        frequency=frequency,
        time=time_,
        weekday=weekday,
        auto_sync_timesheets=None if timesheets is None else timesheets == "on",
        auto_sync_orders=None if orders is None else orders == "on",
        lookback_days=lookback_days,
        notify_emails=notify,
        webhook_url=webhook,
    )
    if not change.is_empty() and key is None:
        _fail("Give --key: sync settings belong to one connection.")
    engine = _engine()
    try:
        if batch_size is not None:
            set_batch_size(engine, batch_size)
        if key is not None and not change.is_empty():
            change_settings(engine, key, change)
        with engine.connect() as conn:
            shown = read_settings(conn, keys=[key] if key else None)
            size = _batch_size(conn)
    except (SettingsError, ConnectionsError) as exc:
        _fail(f"Refused: {exc}")
    except sa.exc.SQLAlchemyError as exc:
        _fail(f"Pay database error: {_first_line(exc)}")
    finally:
        engine.dispose()
    if key and not shown:
        _fail(f"No connection has the key {key!r}.")
    for settings in shown:
        click.echo(settings.describe())
    click.echo(f"Batch size: {size} connection(s) per sync run")


def _batch_size(conn: sa.Connection) -> int:
    return batch_size(conn)


# -- sync-log -----------------------------------------------------------------------------------


@click.command("sync-log")
@click.option("--key", "keys", multiple=True, help="Only this connection (repeatable).")
@click.option("--run", "run_id", help="Only this run (a prefix of its id is enough).")
@click.option("--limit", default=30, show_default=True, help="Newest rows to show.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per row.")
def sync_log_command(keys: tuple[str, ...], run_id: str | None, limit: int, as_json: bool) -> None:
    """What each run did per connection: counts, requests and errors, newest first."""
    engine = _engine()
    try:
        named_connections(engine, keys)
        with engine.connect() as conn:
            rows = sync_log_rows(conn, keys=list(keys) or None, run_id=run_id, limit=limit)
    except ConnectionsError as exc:
        _fail(str(exc))
    except sa.exc.SQLAlchemyError as exc:
        _fail(f"Pay database error: {_first_line(exc)}")
    finally:
        engine.dispose()
    if not rows:
        click.echo("No sync-log rows yet: nothing has run for these connections.")
        return
    if as_json:
        for r in rows:
            click.echo(
                json.dumps(
                    {
                        "started_at": r.started_at.isoformat(),
                        "run_id": r.run_id,
                        "kind": r.kind,
                        "connection": r.connection,
                        "entity": r.entity,
                        "window": format_window(*r.window) if r.window else None,
                        **r.counts,
                        "api_requests": r.api_requests,
                        "error": r.error,
                    }
                )
            )
        return
    header = ("started (UTC)", "run", "kind", "connection", "entity", "window", "fetched",
              "ins", "upd", "void", "quar", "held", "req", "error")  # fmt: skip
    lines = [
        (
            f"{r.started_at:%Y-%m-%d %H:%M}",
            r.run_id[:8],
            r.kind,
            r.connection,
            r.entity,
            format_window(*r.window) if r.window else "",
            *(str(r.counts[n]) for n in ("fetched", "inserted", "updated", "voided")),
            str(r.counts["quarantined"]),
            str(r.counts["held"]),
            str(r.api_requests),
            (r.error or "").replace("\n", " ")[:90],
        )
        for r in rows
    ]
    _table(header, lines)


# -- status (sync part) -------------------------------------------------------------------------


def sync_details(conn: sa.Connection, connection_ids: list[int]) -> dict[int, SyncStatus]:
    """The sync side of each connection's status, by id (for `status`)."""
    now = datetime.now(UTC)
    return {cid: sync_status(conn, cid, now) for cid in connection_ids}


def sync_statuses(engine: Engine, keys: list[str] | None = None) -> list[SyncStatus]:
    now = datetime.now(UTC)
    with engine.connect() as conn:
        rows = all_connections(engine)
        return [sync_status(conn, r.id, now) for r in rows if not keys or r.key in keys]


def echo_statuses(statuses: list[SyncStatus]) -> None:
    """Per connection: status, last sync, next due sync, last counts, conflicts, last error."""
    if not statuses:
        click.echo("No connections yet: create one with `assignar-pipeline connect`.")
        return
    for s in statuses:
        click.echo(f"{s.key}: {s.base.describe()}")
        echo_sync_details(s)


def echo_sync_details(s: SyncStatus) -> None:
    """The sync side of `status`: last and next sync, the last run's counts, quarantine."""
    last = (
        f"{s.last_sync_at:%Y-%m-%d %H:%M} UTC ({s.last_run_kind or 'manual'})"
        if s.last_sync_at
        else "never"
    )
    due = f"{s.next_due_at:%Y-%m-%d %H:%M} UTC" if s.next_due_at else "not scheduled"
    click.echo(f"  last sync:      {last}")
    click.echo(f"  next due sync:  {due} ({s.settings.describe().split(': ', 1)[1]})")
    for label, line in zip(("last run:", ""), s.last_run(), strict=False):
        click.echo(f"  {label:<16}{line}")
    click.echo(f"  open conflicts: {s.open_conflicts}; in quarantine: {s.open_quarantine}")
    if s.last_error:
        click.echo(f"  last error:     {s.last_error}")


# -- bulk-import --------------------------------------------------------------------------------


@click.command("bulk-import")
@click.option("--connection", "connections", multiple=True, help="Connection key (repeatable).")
@click.option("--full-history", is_flag=True, help="From the first partition to today.")
@click.option("--last-3-months", is_flag=True, help="The last 3 months, to today.")
@click.option("--from", "start", type=click.DateTime(["%Y-%m-%d"]), help="First date.")
@click.option(
    "--to", "end", type=click.DateTime(["%Y-%m-%d"]), help="Last date, included (default today)."
)
@click.option("--project", "projects", multiple=True, help="Only this project (code or name).")
@click.option("--worker", "workers", multiple=True, help="Only this worker (id, email, name).")
@click.option("--timesheets/--no-timesheets", default=True, show_default=True)
@click.option("--orders/--no-orders", default=False, show_default=True)
@click.option("--at", "at", metavar="HH:MM|ISO", help="Launch later (off-hours), e.g. 22:00.")
@click.option(
    "--dagster-url",
    envvar="DAGSTER_URL",
    default="http://127.0.0.1:3000",
    show_default=True,
    help="The Dagster webserver (DAGSTER_URL).",
)
@click.option(
    "--print", "print_only", is_flag=True, help="Print the GraphQL request; send nothing."
)
@click.option(
    "--export",
    "export_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="First write the connections' data for these dates to this zip (see `export`).",
)
def bulk_import_command(
    connections: tuple[str, ...],
    full_history: bool,
    last_3_months: bool,
    start: datetime | None,
    end: datetime | None,
    projects: tuple[str, ...],
    workers: tuple[str, ...],
    timesheets: bool,
    orders: bool,
    at: str | None,
    dagster_url: str,
    print_only: bool,
    export_path: Path | None = None,
) -> None:
    """Import history as a Dagster backfill (progress on its page in the UI). Dates are the
    connections' local work dates; "today" is today where they are."""
    if export_path is not None and print_only:
        raise click.UsageError("--print sends nothing, so there is nothing to --export before.")
    history_start = date.fromisoformat(os.environ.get("PIPELINE_HISTORY_START", "2020-01-01"))
    try:
        one_range(
            {
                "--full-history": full_history,
                "--last-3-months": last_3_months,
                "--from": start is not None,
                "--to": end is not None,
            }
        )
        preset = "full" if full_history else "3m" if last_3_months else None
        today = _today(connections)
        first, last = date_range(
            preset,
            today,
            history_start,
            start=start.date() if start else None,
            end=end.date() if end else None,
        )
        spec = BulkImport(
            start=first,
            end=last,
            connections=connections,
            projects=projects,
            workers=workers,
            timesheets=timesheets,
            orders=orders,
        )
        if print_only:
            click.echo(json.dumps(graphql_request(spec), indent=2))
            return
        _check_scope(spec)
        if export_path is not None:
            _export_first(spec, export_path)
        if at:
            engine = _engine()
            try:
                when = parse_at(at, datetime.now(UTC), datetime.now().astimezone().tzinfo)
                request_id = queue(engine, spec, when)
            finally:
                engine.dispose()
            click.echo(f"Queued bulk import {request_id}: {spec.describe()}")
            click.echo(f"  launched at or after {when:%Y-%m-%d %H:%M} UTC by the launcher sensor")
            return
        backfill_id = launch(f"{dagster_url.rstrip('/')}/graphql", spec)
    except BulkImportError as exc:
        _fail(str(exc))
    click.echo(f"Launched backfill {backfill_id}: {spec.describe()}")
    click.echo(f"  progress: {dagster_url.rstrip('/')}/runs/b/{backfill_id}")


def take_export(keys: Sequence[str], out: Path, window: tuple[date, date] | None) -> ExportResult:
    """Export and say what was written (also what `bulk-import` and `disconnect --export` do).
    Raises `ExportRefused`; a database error exits 1."""
    engine = _engine()
    try:
        result = export_connections(engine, keys, out, window=window)
    except sa.exc.SQLAlchemyError as exc:
        _fail(f"Pay database error; no export written: {_first_line(exc)}")
    finally:
        engine.dispose()
    span = f" ({window[0]}..{window[1]})" if window else ""
    click.echo(
        f"Exported {', '.join(result.connections)}{span} to {result.path} "
        f"({result.rows} rows in {len(result.files)} files; manifest.json has their SHA-256)"
    )
    for f in result.files:
        click.echo(f"  {f.name:<20} {f.rows:>9} rows")
    return result


def _export_first(spec: BulkImport, path: Path) -> None:
    """The export the import's connections and dates, before anything is launched or queued."""
    keys = list(spec.connections)
    if not keys:
        engine = _engine()
        try:
            keys = [c.key for c in active_connections(engine)]
        finally:
            engine.dispose()
    try:
        take_export(keys, path, (spec.start, spec.end))
    except ExportRefused as exc:
        _fail(f"Not launched: {exc}")


def _today(keys: tuple[str, ...]) -> date:
    """Today where the import's connections are (those named, else every active one)."""
    engine = _engine()
    try:
        rows = [r for r in all_connections(engine) if r.active and (not keys or r.key in keys)]
    except sa.exc.SQLAlchemyError as exc:
        _fail(f"Pay database error: {_first_line(exc)}")
    finally:
        engine.dispose()
    return local_today([r.timezone for r in rows], datetime.now(UTC))


def _check_scope(spec: BulkImport) -> None:
    """Refuse unknown or disconnected keys, and projects or workers a connection does not have,
    before anything is launched or queued (the runs would only fail)."""
    engine = _engine()
    try:
        connections = active_connections(engine, list(spec.connections) or None)
        with engine.connect() as conn:
            for connection in connections:
                check_scope(conn, connection, Scope(projects=spec.projects, workers=spec.workers))
    except (ConnectionsError, ScopeError) as exc:
        _fail(str(exc))
    finally:
        engine.dispose()


SYNC_COMMANDS = [settings_command, sync_log_command, bulk_import_command]


@click.command("status")
@click.option("--key", "keys", multiple=True, help="Only this connection (repeatable).")
def status_command(keys: tuple[str, ...]) -> None:
    """Per connection: Connected / Sync Warning / Error, last and next sync, counts, last error."""
    engine = _engine()
    try:
        statuses = sync_statuses(engine, list(keys) or None)
    except sa.exc.SQLAlchemyError as exc:
        _fail(f"Pay database error: {_first_line(exc)}")
    finally:
        engine.dispose()
    echo_statuses(statuses)


def register(main: click.Group) -> None:
    """Add these commands to `assignar-pipeline`; a `status` defined there already is kept."""
    for command in SYNC_COMMANDS:
        main.add_command(command)
    if "status" not in main.commands:
        main.add_command(status_command)

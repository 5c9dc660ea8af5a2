"""Before big changes, on the command line: `preview` an import, `export` a connection's data.

Registered on `assignar-pipeline` by `cli.py`. Input that cannot work (an unknown connection,
project or worker, dates in the wrong order, an export file that exists) is refused by click
with exit status 2; a preview whose import fails (Assignar unreachable, credentials) exits 1.
Neither ever writes to the Pay database.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click
import sqlalchemy as sa

from assignar_pipeline.cli_sync import _engine, _fail, _first_line, take_export
from assignar_pipeline.connections import open_client, request_rate
from assignar_pipeline.export import ExportRefused
from assignar_pipeline.preview import PreviewFailed, PreviewRefused, PreviewRequest, preview_import

DATE = click.DateTime(["%Y-%m-%d"])


@click.command("preview")
@click.option("--connection", "key", required=True, help="The connection to preview.")
@click.option("--from", "start", required=True, type=DATE, help="First local work date.")
@click.option("--to", "end", required=True, type=DATE, help="Last local work date (included).")
@click.option("--project", "projects", multiple=True, help="Only this project (code or name).")
@click.option("--worker", "workers", multiple=True, help="Only this worker (id, email, name).")
@click.option("--orders", is_flag=True, help="Also preview confirmed orders.")
def preview_command(
    key: str,
    start: datetime,
    end: datetime,
    projects: tuple[str, ...],
    workers: tuple[str, ...],
    orders: bool,
) -> None:
    """Show what an import of these dates would do, writing nothing: records inserted, updated,
    voided, held (with the conflicts and their candidates), quarantined, and pay by employee."""
    try:
        request = PreviewRequest(key, start.date(), end.date(), projects, workers, orders)
    except PreviewRefused as exc:
        raise click.UsageError(f"Refused: {exc}") from None
    engine = _engine()
    rate = request_rate()
    try:
        report = preview_import(engine, request, lambda c, e: open_client(c, e, rate=rate))
    except PreviewRefused as exc:
        raise click.UsageError(f"Refused: {exc}") from None
    except PreviewFailed as exc:
        _fail(f"Preview failed; nothing was written: {exc}")
    except sa.exc.SQLAlchemyError as exc:
        _fail(f"Pay database error (nothing was written): {_first_line(exc)}")
    finally:
        engine.dispose()
    click.echo(report.markdown())


@click.command("export")
@click.option("--connection", "keys", multiple=True, required=True, help="Key (repeatable).")
@click.option("--from", "start", type=DATE, help="Only timesheets and orders from this date.")
@click.option("--to", "end", type=DATE, help="… to this date (included).")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The zip file to write (must not exist).",
)
def export_command(
    keys: tuple[str, ...], start: datetime | None, end: datetime | None, out: Path
) -> None:
    """Write everything the integration holds for the connection(s) to one zip of CSV files:
    settings, links, conflicts, resolutions, holds, quarantine, sync log, timesheets, orders."""
    if (start is None) != (end is None):
        raise click.UsageError("Give both --from and --to, or neither (everything).")
    window = (start.date(), end.date()) if start and end else None
    try:
        take_export(keys, out, window)
    except ExportRefused as exc:
        raise click.UsageError(f"Refused: {exc}") from None


def register(main: click.Group) -> None:
    """Add `preview` and `export` to `assignar-pipeline`."""
    main.add_command(preview_command)
    main.add_command(export_command)

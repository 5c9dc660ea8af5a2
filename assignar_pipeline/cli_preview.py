"""Before big changes, on the command line: `preview` an import, `export` a connection's data.

Registered on `assignar-pipeline` by `cli.py`. Input that cannot work (an unknown connection,
project or worker, dates in the wrong order, an export file that exists) is refused by click
with exit status 2; a preview whose import fails (Assignar unreachable, credentials) exits 1.
Neither ever writes to the Pay database.
"""

from __future__ import annotations

from datetime import datetime

import click
import sqlalchemy as sa

from assignar_pipeline.cli_sync import _engine, _fail, _first_line
from assignar_pipeline.connections import open_client, request_rate
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


def register(main: click.Group) -> None:
    """Add `preview` to `assignar-pipeline`."""
    main.add_command(preview_command)

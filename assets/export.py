"""The "Export connection data" job: the same zip as `assignar-pipeline export`, for the Launchpad.

The file is written where the run executes (a path on that machine or a volume it mounts); the
run's metadata lists each file of the zip with its row count and SHA-256.
"""

from datetime import date

import dagster as dg
from pydantic import Field

from assignar_pipeline.export import ExportRefused, export_connections
from assignar_pipeline.markdown import markdown_table
from resources.pay import PayDatabaseResource


class ExportConnectionConfig(dg.Config):
    """The options of `assignar-pipeline export`."""

    connections: list[str] = Field(description="Connection keys to export (one or more).")
    out: str = Field(
        description="Path of the zip to write where the run executes, e.g. "
        "/exports/acme-au-before-bulk-import.zip; it must not exist yet."
    )
    from_date: str | None = Field(
        default=None,
        description="Only timesheets and orders from this date (YYYY-MM-DD); empty: all. "
        "Settings, links, conflicts and the sync log are always whole.",
    )
    to_date: str | None = Field(
        default=None, description="… to this date, included (YYYY-MM-DD); give both or neither."
    )


def _refused(reason: str) -> dg.Failure:
    return dg.Failure(description=f"Refused: {reason}", allow_retries=False)


def _window(config: ExportConnectionConfig) -> tuple[date, date] | None:
    if (config.from_date is None) != (config.to_date is None):
        raise _refused("give both from_date and to_date, or neither (everything).")
    if config.from_date is None or config.to_date is None:
        return None
    try:
        return date.fromisoformat(config.from_date), date.fromisoformat(config.to_date)
    except ValueError:
        raise _refused(
            f"{config.from_date!r} to {config.to_date!r}: write dates as YYYY-MM-DD."
        ) from None


@dg.op
def export_connection_op(
    context: dg.OpExecutionContext, config: ExportConnectionConfig, pay: PayDatabaseResource
) -> str:
    """Write the connections' settings, links, conflicts, resolutions, sync log, timesheets and
    orders to one zip of CSV files with a manifest; return its path."""
    try:
        result = export_connections(
            pay.engine, config.connections, config.out, window=_window(config)
        )
    except ExportRefused as exc:
        raise _refused(str(exc)) from None
    files = [{"file": f.name, "rows": f.rows, "sha256": f.sha256} for f in result.files]
    context.add_output_metadata(
        {
            "path": dg.MetadataValue.path(str(result.path)),
            "dagster/row_count": result.rows,
            "files": dg.MetadataValue.md(markdown_table(files)),
            "connections": ", ".join(result.connections),
        }
    )
    context.log.info(f"Exported {', '.join(result.connections)} to {result.path}")
    return str(result.path)


@dg.job(
    name="export_connection",
    description="Export everything the integration holds for connections (settings, links, "
    "conflicts and resolutions, sync log, Pay timesheets and orders with lines) to one zip of "
    "CSV files with a manifest of counts and checksums: take one before big changes.",
)
def export_connection_job() -> None:
    export_connection_op()

"""Turning per-connection results into Dagster metadata, check results and a named failure."""

from collections.abc import Sequence
from datetime import date
from typing import Any

import dagster as dg

from assignar_pipeline.connections import ConnectionRow, ConnectionsError, active_connections
from assignar_pipeline.markdown import markdown_table
from assignar_pipeline.sync import failed_in_run
from resources.pay import PayDatabaseResource
from resources.scope import SyncScope


def connections_in_scope(pay: PayDatabaseResource, scope: SyncScope) -> list[ConnectionRow]:
    """The run's connections: those named in run config, else every active one.

    A key that names no active connection fails the step at once (retrying cannot help)."""
    try:
        return active_connections(pay.engine, scope.connections or None)
    except ConnectionsError as exc:
        raise dg.Failure(description=f"Refused: {exc}", allow_retries=False) from None


def window_of(context: dg.AssetExecutionContext) -> tuple[date, date]:
    """[first date, day after the last date] of the run's partition or partition range."""
    window = context.partition_time_window
    return window.start.date(), window.end.date()


def table_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """A small markdown table (the per-connection preview shown in the UI)."""
    return markdown_table(rows, empty="_no connections in scope_")


def per_connection_metadata(
    rows: list[dict[str, Any]], row_count: int, connections: Sequence[ConnectionRow]
) -> dict[str, Any]:
    return {
        "dagster/row_count": row_count,
        "connections": dg.MetadataValue.md(table_markdown(rows)),
        "per_connection": dg.MetadataValue.json({row["connection"]: row for row in rows}),
        "connection_count": len(connections),
    }


def fail_if_connections_failed(context: dg.AssetExecutionContext, pay: PayDatabaseResource) -> None:
    """End the run failed, naming each connection that failed, once nothing else would.

    A step with selected downstream assets leaves that to them, so that the other connections
    still load into Pay; the last steps of the run raise.
    """
    failed = failed_in_run(pay.engine, context.run_id)
    if not failed:
        return
    layer = context.job_def.asset_layer
    selected = context.run.asset_selection or layer.selected_asset_keys
    if _descendants(layer.asset_graph, context.asset_key) & selected:
        context.log.warning(f"Connections failed, reported at the end of the run: {failed}")
        return
    lines = "\n".join(f"- {key}: {error}" for key, error in failed.items())
    raise dg.Failure(
        description=f"{len(failed)} connection(s) failed; the others were synced:\n{lines}",
        metadata={"failed_connections": dg.MetadataValue.json(failed)},
        allow_retries=False,
    )


def _descendants(graph, key: dg.AssetKey) -> set[dg.AssetKey]:
    found: set[dg.AssetKey] = set()
    todo = [key]
    while todo:
        for child in graph.get(todo.pop()).child_entity_keys:
            if isinstance(child, dg.AssetKey) and child not in found:
                found.add(child)
                todo.append(child)
    return found

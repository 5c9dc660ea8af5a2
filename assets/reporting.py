"""Turning per-connection results into Dagster metadata, check results and a named failure."""

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

import dagster as dg

from assignar_pipeline.connections import ConnectionRow, ConnectionsError, active_connections
from assignar_pipeline.markdown import markdown_table
from assignar_pipeline.status import failed_in_run
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


class DateProgress:
    """Reports each date piece of a ranged run as materialized once every connection of the
    step has finished it, so a long import's progress moves in the UI piece by piece instead of
    all at once when the run ends (the run's own materialization still follows)."""

    def __init__(
        self, context: dg.AssetExecutionContext, connections: Sequence[ConnectionRow]
    ) -> None:
        self.context = context
        self.expected = {c.key for c in connections}
        self.finished: dict[tuple[date, date], set[str]] = {}

    def __call__(self, connection_key: str, piece: tuple[date, date]) -> None:
        done = self.finished.setdefault(piece, set())
        done.add(connection_key)
        if done != self.expected or window_of(self.context) == piece:
            return  # a window of one piece is reported by the step's own materialization
        day = piece[0]
        while day < piece[1]:
            self.context.log_event(
                dg.AssetMaterialization(
                    asset_key=self.context.asset_key,
                    partition=day.isoformat(),
                    description="Date piece finished; the run goes on with the rest",
                    metadata={"connections": len(done)},
                )
            )
            day += timedelta(days=1)


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
    raise connections_failed(failed, "the others were synced")


def refuse_if_nothing_done(
    context: dg.AssetExecutionContext, pay: PayDatabaseResource, succeeded: int
) -> None:
    """Fail before materializing when no connection of the step succeeded and one failed.

    A refused or failed step records no materialization, so its dates never look freshly
    loaded and a backfill of them ends failed; a step where some connections succeeded
    materializes for them and the run still ends failed, naming the others.
    """
    if succeeded:
        return
    failed = failed_in_run(pay.engine, context.run_id)
    if failed:
        raise connections_failed(failed, "nothing was loaded")


def connections_failed(
    failed: dict[str, str], outcome: str, metadata: dict[str, Any] | None = None
) -> dg.Failure:
    """The run's failure, naming each failed connection with its error (`failed_in_run`); the
    others' work stands, so a retry would only repeat it."""
    lines = "\n".join(f"- {key}: {error}" for key, error in failed.items())
    return dg.Failure(
        description=f"{len(failed)} connection(s) failed; {outcome}:\n{lines}",
        metadata={"failed_connections": dg.MetadataValue.json(failed), **(metadata or {})},
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

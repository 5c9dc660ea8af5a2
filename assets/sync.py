"""The sync job (change detection for a batch of connections) and the settings job.

`sync_assignar` is what the hourly schedule launches: for each connection of its run config it
applies the changes since the connection's cursor, refreshes the lookback window, loads what
changed into Pay, and reports a materialization of every asset partition it changed (so the
assets' pages show what moved, per connection), then the connections' status as metadata.
"""

import functools
from datetime import UTC, date, datetime

import dagster as dg
from pydantic import Field

from assets.assignar import API_POOL, API_RETRY
from assets.partitions import HISTORY_START, work_dates
from assets.reporting import connections_failed, connections_in_scope, table_markdown
from assignar_pipeline.changes import DATED, ConnectionSync, sync_connections
from assignar_pipeline.connections import ConnectionsError
from assignar_pipeline.entities import ENTITIES, SNAPSHOTS
from assignar_pipeline.runs import OPERATION_TAG, SYNC
from assignar_pipeline.status import failed_in_run, sync_status
from assignar_pipeline.steps import load_for
from assignar_pipeline.sync_settings import (
    SettingsChange,
    SettingsError,
    change_settings,
    read_settings,
    set_batch_size,
)
from assignar_pipeline.synclog import note_run
from resources.assignar import AssignarResource
from resources.pay import PayDatabaseResource
from resources.scope import SyncScope

#: Which assets a changed entity's partitions belong to (extract, then Pay).
ASSETS = {e.name: e.assets for e in ENTITIES}
FIRST_DATE = date.fromisoformat(HISTORY_START)


@dg.op(
    description="Apply what changed in Assignar since each connection's cursor, catch deletes in "
    "the lookback window, load the changes into Pay.",
    tags={"kind": "assignar"},
    pool=API_POOL,
    retry_policy=API_RETRY,  # a retry resumes at each connection's cursor
)
def sync_assignar_changes(
    context: dg.OpExecutionContext,
    assignar: AssignarResource,
    pay: PayDatabaseResource,
    scope: SyncScope,
) -> None:
    engine = pay.engine
    note_run(engine, context.run_id, "sync")
    connections = connections_in_scope(pay, scope)
    with engine.connect() as conn:
        settings = {
            s.connection_id: s for s in read_settings(conn, ids=[c.id for c in connections])
        }
    for connection in connections:
        if not settings[connection.id].entities:
            context.log.info(f"{connection.key}: auto-sync is off for everything it imports")
    results = sync_connections(
        engine,
        connections,
        functools.partial(assignar.client_for, engine=engine),
        settings,
        run_id=context.run_id,
        now=lambda: datetime.now(UTC),
        load=load_for,
    )
    for result in results:
        _report(context, result)
    rows = [_row(result) for result in results]
    failed = failed_in_run(engine, context.run_id)  # extracts, rates and loads alike
    statuses = []
    with engine.connect() as conn:
        for connection in connections:
            status = sync_status(conn, connection.id, datetime.now(UTC))
            statuses.append({"connection": connection.key, **status.as_metadata()})
    metadata = {
        "connections": dg.MetadataValue.md(table_markdown(rows)),
        "status": dg.MetadataValue.md(table_markdown(statuses)),
        "per_connection": dg.MetadataValue.json({r["connection"]: r for r in rows}),
        "api_requests": sum(r["api_requests"] for r in rows),
        "connection_count": len(connections),
    }
    if failed:
        raise connections_failed(failed, "the others were synced", metadata)
    context.add_output_metadata(metadata)


def _row(result: ConnectionSync) -> dict:
    row: dict = {"connection": result.connection_key, "api_requests": result.api_requests}
    for change in result.changes:
        if change.entity in DATED:
            meta = change.as_metadata()
            row[change.entity] = (
                f"+{meta['inserted']} ~{meta['updated']} -{meta['voided']} "
                f"({meta['partitions_changed']} dates)"
            )
    row["error"] = result.error or ""
    return row


def _report(context: dg.OpExecutionContext, result: ConnectionSync) -> None:
    """One materialization per changed partition of each asset, with this connection's counts."""
    for change in result.changes:
        if change.error:
            context.log.error(f"{result.connection_key} {change.entity}: {change.error}")
        else:
            context.log.info(f"{result.connection_key} {change.entity}: {change.as_metadata()}")
    last = date.fromisoformat(work_dates.get_last_partition_key())
    for entity in DATED:
        for day, count in sorted(result.dates(entity).items()):
            if not FIRST_DATE <= day <= last:
                continue  # staged and loaded, but no partition exists yet (orders booked ahead)
            for asset in ASSETS[entity]:
                context.log_event(
                    dg.AssetMaterialization(
                        asset_key=asset,
                        partition=day.isoformat(),
                        description=f"Changed by the sync of {result.connection_key}",
                        metadata={"connection": result.connection_key, "records_changed": count},
                    )
                )
    for entity in SNAPSHOTS:
        if result.changed(entity):
            counts = next(c for c in result.changes if c.entity == entity).as_metadata()
            for asset in ASSETS[entity]:
                context.log_event(
                    dg.AssetMaterialization(
                        asset_key=asset,
                        description=f"Changed by the sync of {result.connection_key}",
                        metadata={"connection": result.connection_key, **counts},
                    )
                )


@dg.job(
    description="Change-detection sync of the connections in run config (the hourly schedule "
    "launches it in batches).",
    tags={OPERATION_TAG: SYNC, "dagster/max_runtime": "3000"},
    # One step: whatever PIPELINE_EXECUTOR says, a process (or Celery task) of its own would only
    # add seconds of start-up to every sync.
    executor_def=dg.in_process_executor,
)
def sync_assignar() -> None:
    sync_assignar_changes()


class SyncSettingsConfig(dg.Config):
    """The options of `assignar-pipeline settings`; empty fields leave a setting unchanged."""

    key: str | None = Field(default=None, description="Connection to change (optional).")
    frequency: str | None = Field(default=None, description="hourly, daily or weekly.")
    time: str | None = Field(default=None, description="Preferred local time HH:MM.")
    weekday: str | None = Field(default=None, description="Weekly: mon..sun or 1..7.")
    timesheets: bool | None = Field(default=None, description="Auto-sync timesheets on/off.")
    orders: bool | None = Field(
        default=None, description="Auto-sync orders on/off (needs job costing)."
    )
    lookback_days: int | None = Field(default=None, description="Days re-read to catch deletes.")
    notify_emails: list[str] | None = Field(
        default=None, description="Recipients of this connection's notifications ([] = none)."
    )
    webhook_url: str | None = Field(
        default=None, description="Webhook URL, or env:NAME for a URL that carries a token; ''."
    )
    batch_size: int | None = Field(
        default=None, description="Deployment-wide: connections per scheduled sync run."
    )


@dg.op
def change_sync_settings(
    context: dg.OpExecutionContext, config: SyncSettingsConfig, pay: PayDatabaseResource
) -> None:
    """Validate and apply the settings; refuse with what to fix."""
    try:
        if config.batch_size is not None:
            set_batch_size(pay.engine, config.batch_size)
            context.log.info(f"Batch size: {config.batch_size} connections per sync run")
        if config.key is not None:
            change = SettingsChange(
                frequency=config.frequency,
                time=config.time,
                weekday=config.weekday,
                auto_sync_timesheets=config.timesheets,
                auto_sync_orders=config.orders,
                lookback_days=config.lookback_days,
                notify_emails=config.notify_emails,
                webhook_url=config.webhook_url,
            )
            settings = change_settings(pay.engine, config.key, change)
            context.log.info(settings.describe())
    except (SettingsError, ConnectionsError) as exc:
        raise dg.Failure(description=f"Refused: {exc}", allow_retries=False) from None


@dg.job(description="Change a connection's sync settings, or the sync batch size.")
def update_sync_settings() -> None:
    change_sync_settings()


SYNC_JOBS = [sync_assignar, update_sync_settings]

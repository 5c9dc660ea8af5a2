"""Run-status sensors: record how each run ended in the sync log, tell each team, and tell the
data engineers when any job starts failing or succeeds again (`sensors.alerts.run_alert`).

- A finished initial import: its team hears the counts (success) or the failure's message.
- A failed sync: only the teams whose connection failed hear about it, each with its own message.
- A finished bulk import (a backfill, several runs): each team covered hears its own totals once
  the backfill ends (`notify_finished_backfills` watches backfills, not single runs).
Every ended run is written to `sync_run`; a failed run whose connections logged no error of their
own gets a `run` row per connection with the failure's message, so the sync log explains it.
"""

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import sqlalchemy as sa

from assignar_pipeline.connections import active_connections, all_connections
from assignar_pipeline.notify import deliver, reports_for
from assignar_pipeline.pay import tables as t
from assignar_pipeline.runs import BULK_IMPORT, OPERATION_TAG, scoped_connections
from assignar_pipeline.synclog import finish_run, record_run_failure, run_kind
from resources.notify import NotifyResource
from resources.pay import PayDatabaseResource
from sensors.alerts import run_alert
from sensors.timing import interval

#: A finished backfill's status (the name of Dagster's `BulkActionStatus`) → the event its teams
#: hear. Read by name: Dagster exports neither that enum nor a backfill filter publicly.
FINISHED_BACKFILL = {
    "COMPLETED_SUCCESS": "backfill_finished",
    "COMPLETED": "backfill_finished",
    "COMPLETED_FAILED": "backfill_failed",
    "FAILED": "backfill_failed",
    "CANCELED": "backfill_failed",
}
#: Backfills read per page while looking back for finished bulk imports.
BACKFILL_PAGE = 50


#: The op job that works on connections; every other op job (connect, test connection,
#: resolve conflicts, settings) concerns at most a connection that may not exist yet.
SYNC_JOB = "sync_assignar"


def covered_connections(
    engine, run_config: dict | None, *, covers_connections: bool = True
) -> list[int]:
    """The connections a run (or backfill) covered: its run config, else every active one.

    A run that does not work on connections covers none, so that its failure (a refused
    `connect_assignar` or `resolve_conflicts`) never turns a healthy connection to Error.
    """
    if not covers_connections:
        return []
    keys = scoped_connections(run_config)
    if keys:
        by_key = {c.key: c.id for c in all_connections(engine)}
        return [by_key[k] for k in keys if k in by_key]
    return [c.id for c in active_connections(engine)]


def works_on_connections(instance: dg.DagsterInstance, run: dg.DagsterRun) -> bool:
    """Runs that materialize assets and the sync job work on connections; other jobs do not."""
    if run.job_name == SYNC_JOB:
        return True
    planned = dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED
    return bool(instance.all_logs(run.run_id, of_type=planned))


def failure_message(instance: dg.DagsterInstance, run_id: str) -> str | None:
    """The first failed step's own message (a `dg.Failure`'s description, or the error), which
    says what to fix; the run's failure event only names the step."""
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
        data = record.dagster_event.step_failure_data
        if data.user_failure_data is not None and data.user_failure_data.description:
            return data.user_failure_data.description
        if data.error is not None:
            error = data.error
            while error.cause is not None and "dagster" in error.cls_name.lower():
                error = error.cause  # unwrap Dagster's "Error occurred while executing op"
            return error.message.strip()
    return None


def failed_connections(engine, run_id: str) -> list[int]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(t.sync_log.c.connection_id)
                .where(t.sync_log.c.run_id == run_id, t.sync_log.c.error.is_not(None))
                .distinct()
            ).scalars()
        )


def _notify(context, pay: PayDatabaseResource, notify: NotifyResource, run_ids: Sequence[str],
            connection_ids: Sequence[int], event: str, ref: str, url: str,
            run_error: str | None = None) -> None:  # fmt: skip
    with pay.engine.connect() as conn:
        reports = reports_for(
            conn, run_ids, connection_ids, event, ref, run_error=run_error, url=url
        )
    reports = [r for r in reports if r.connection_id in set(connection_ids)]
    for delivery in deliver(pay.engine, reports, notify.smtp()):
        outcome = "sent" if delivery.sent else ("already sent" if delivery.skipped else "NOT sent")
        detail = f": {delivery.error}" if delivery.error else ""
        context.log.info(
            f"{event} {delivery.channel} for {delivery.connection_key} to {delivery.target}: "
            f"{outcome}{detail}"
        )


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Records successful runs; an initial import's team hears its counts; a job "
    "that had failed: the data engineers hear it succeeds again.",
)
def notify_on_success(
    context: dg.RunStatusSensorContext, pay: PayDatabaseResource, notify: NotifyResource
):
    run = context.dagster_run
    kind = run_kind(run.tags)
    finish_run(pay.engine, run.run_id, "success", kind=kind)
    connections = covered_connections(
        pay.engine, run.run_config, covers_connections=works_on_connections(context.instance, run)
    )
    if kind == "initial_import":
        url = f"{notify.ui_url()}/runs/{run.run_id}"
        _notify(context, pay, notify, [run.run_id], connections, "import_finished", run.run_id, url)
    run_alert(context, pay, notify, run, failed=False, connections=_keys(pay, connections))


@dg.run_failure_sensor(
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Records failed runs in the sync log; each failed connection's team hears why; "
    "the data engineers hear of any job that starts failing.",
)
def notify_on_failure(
    context: dg.RunFailureSensorContext, pay: PayDatabaseResource, notify: NotifyResource
):
    run = context.dagster_run
    kind = run_kind(run.tags)
    message = failure_message(context.instance, run.run_id) or (
        context.failure_event.message or "The run failed."
    )
    finish_run(pay.engine, run.run_id, "failure", kind=kind, error=message[:2000])
    connections = covered_connections(
        pay.engine, run.run_config, covers_connections=works_on_connections(context.instance, run)
    )
    explained = failed_connections(pay.engine, run.run_id)
    if not explained and connections:  # nothing of its own: the run itself failed for all of them
        record_run_failure(pay.engine, run.run_id, connections, message, datetime.now(UTC))
        explained = connections
    url = f"{notify.ui_url()}/runs/{run.run_id}"
    if kind == "sync":
        _notify(
            context, pay, notify, [run.run_id], explained, "sync_failed", run.run_id, url, message
        )
    elif kind == "initial_import":
        _notify(
            context,
            pay,
            notify,
            [run.run_id],
            connections,
            "import_failed",
            run.run_id,
            url,
            message,
        )
    run_alert(
        context, pay, notify, run, failed=True, message=message,
        connections=_keys(pay, connections),
    )  # fmt: skip


def _keys(pay: PayDatabaseResource, connection_ids: Sequence[int]) -> list[str]:
    by_id = {c.id: c.key for c in all_connections(pay.engine)}
    return [by_id[i] for i in connection_ids if i in by_id]


def finished_bulk_imports(instance: dg.DagsterInstance, created_after: float) -> Iterator[Any]:
    """The bulk-import backfills created after `created_after` (a timestamp) that have ended,
    newest first: the instance's backfills read a page at a time, back to that time."""
    cursor = None
    while True:
        page = instance.get_backfills(cursor=cursor, limit=BACKFILL_PAGE)
        for backfill in page:
            if backfill.backfill_timestamp < created_after:
                return
            if (
                backfill.status.name in FINISHED_BACKFILL
                and backfill.tags.get(OPERATION_TAG) == BULK_IMPORT
            ):
                yield backfill
        if len(page) < BACKFILL_PAGE:
            return
        cursor = page[-1].backfill_id


@dg.sensor(
    minimum_interval_seconds=interval(60),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="When a bulk import (backfill) ends, each team it covered hears its own totals.",
)
def notify_finished_backfills(
    context: dg.SensorEvaluationContext, pay: PayDatabaseResource, notify: NotifyResource
):
    state = json.loads(context.cursor) if context.cursor else {}
    done: list[str] = state.get("done", [])
    since = state.get("since") or datetime.now(UTC).timestamp() - 3600
    handled = []
    for backfill in finished_bulk_imports(context.instance, since - 7 * 86400):
        if backfill.backfill_id in done:
            continue
        runs = context.instance.get_run_records(
            dg.RunsFilter(tags={"dagster/backfill": backfill.backfill_id})
        )
        run_ids = [r.dagster_run.run_id for r in runs]
        event = FINISHED_BACKFILL[backfill.status.name]
        connections = covered_connections(pay.engine, backfill.run_config)
        url = f"{notify.ui_url()}/runs/b/{backfill.backfill_id}"
        _notify(context, pay, notify, run_ids, connections, event, backfill.backfill_id, url)
        handled.append(backfill.backfill_id)
    cursor = json.dumps({"since": since, "done": (done + handled)[-500:]})
    if not handled:
        return dg.SensorResult(skip_reason="No bulk import ended.", cursor=cursor)
    return dg.SensorResult(cursor=cursor)


NOTIFY_SENSORS = [notify_on_success, notify_on_failure, notify_finished_backfills]

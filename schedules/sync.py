"""The hourly sync schedule: launches the due connections' syncs in batches.

The tick's logic is `plan_sync_tick`, a pure function of the connections' settings, the tick's
time and the batch size; the schedule only reads those from Pay and turns batches into runs.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import dagster as dg

from assets.sync import sync_assignar
from assignar_pipeline.runs import (
    CONNECTIONS_TAG,
    OPERATION_TAG,
    SYNC,
    connections_tag,
    scope_config,
)
from assignar_pipeline.schedule import batches, is_due, tick_of
from assignar_pipeline.sync_settings import SyncSettings, batch_size, read_settings
from resources.pay import PayDatabaseResource


def plan_sync_tick(settings: Sequence[SyncSettings], tick: datetime, size: int) -> list[list[str]]:
    """The connection keys to sync at `tick`, in batches of at most `size`."""
    due = [s.key for s in settings if s.scheduled and is_due(s.cadence, tick)]
    return batches(sorted(due), size)


def run_requests(plan: list[list[str]], tick: datetime) -> list[dg.RunRequest]:
    stamp = tick.strftime("%Y-%m-%dT%H:%MZ")
    return [
        dg.RunRequest(
            # One run per batch per tick, even if the tick is evaluated again.
            run_key=f"sync:{stamp}:{number}:{','.join(keys)}"[:500],
            run_config=scope_config(keys),
            tags={
                OPERATION_TAG: SYNC,
                CONNECTIONS_TAG: connections_tag(keys),
                "assignar/tick": stamp,
            },
        )
        for number, keys in enumerate(plan, start=1)
    ]


@dg.schedule(
    cron_schedule="0 * * * *",
    job=sync_assignar,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every hour: sync the connections due under their own frequency, preferred "
    "local time and time zone, in batches (`assignar-pipeline settings --batch-size`).",
)
def hourly_sync(context: dg.ScheduleEvaluationContext, pay: PayDatabaseResource):
    tick = tick_of(context.scheduled_execution_time or datetime.now(UTC))
    with pay.engine.connect() as conn:
        settings = read_settings(conn)
        size = batch_size(conn)
    plan = plan_sync_tick(settings, tick, size)
    if not plan:
        return dg.SkipReason(f"No connection is due at {tick:%Y-%m-%d %H:%M} UTC.")
    due = sum(len(keys) for keys in plan)
    context.log.info(f"{due} connection(s) due at {tick:%H:%M} UTC: {len(plan)} run(s)")
    return run_requests(plan, tick)


SYNC_SCHEDULES = [hourly_sync]

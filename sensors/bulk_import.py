"""Launches bulk imports queued for later (`assignar-pipeline bulk-import --at 22:00`) as backfills
through Dagster's GraphQL API, once their time has come."""

from datetime import UTC, datetime

import dagster as dg

from assignar_pipeline.bulk import BulkImportError, DagsterUnreachable, due, launch, mark
from resources.notify import NotifyResource
from resources.pay import PayDatabaseResource
from sensors.timing import interval


@dg.sensor(
    minimum_interval_seconds=interval(60),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Launches queued bulk imports (off-hours) as backfills when their time comes.",
)
def launch_bulk_imports(
    context: dg.SensorEvaluationContext, pay: PayDatabaseResource, notify: NotifyResource
):
    with pay.engine.connect() as conn:
        requests = due(conn, datetime.now(UTC))
    if not requests:
        return dg.SkipReason("No queued bulk import is due.")
    graphql = notify.graphql_url()
    for request in requests:
        try:
            backfill_id = launch(graphql, request.spec)
        except DagsterUnreachable as exc:
            context.log.warning(f"Bulk import {request.id} waits: {exc}")
            continue
        except BulkImportError as exc:
            mark(pay.engine, request.id, error=str(exc))
            context.log.error(f"Bulk import {request.id} ({request.spec.describe()}): {exc}")
            continue
        mark(pay.engine, request.id, backfill_id=backfill_id)
        context.log.info(f"Bulk import {request.id} launched as backfill {backfill_id}")
    return dg.SkipReason(f"Launched {len(requests)} queued bulk import(s) as backfills.")


BULK_SENSORS = [launch_bulk_imports]

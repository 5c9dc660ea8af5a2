"""Freshness on its own schedule: stale data shows even when nothing runs to materialize it."""

import dagster as dg

from assets.freshness import check_freshness

freshness_checks = dg.ScheduleDefinition(
    name="freshness_checks",
    job=check_freshness,
    cron_schedule="*/15 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every 15 minutes: is each connection's Pay data as fresh as its sync frequency?",
)

FRESHNESS_SCHEDULES = [freshness_checks]

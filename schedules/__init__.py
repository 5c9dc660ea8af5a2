"""Dagster schedules, exported for `assignar_pipeline.definitions`."""

from schedules.freshness import FRESHNESS_SCHEDULES
from schedules.sync import SYNC_SCHEDULES

SCHEDULES: list = [*SYNC_SCHEDULES, *FRESHNESS_SCHEDULES]

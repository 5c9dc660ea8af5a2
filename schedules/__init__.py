"""Dagster schedules, exported for `assignar_pipeline.definitions`."""

from schedules.sync import SYNC_SCHEDULES

SCHEDULES: list = [*SYNC_SCHEDULES]

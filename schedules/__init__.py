"""Dagster schedules, exported for `assignar_pipeline.definitions`."""

SCHEDULES: list = []

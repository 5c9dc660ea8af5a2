"""Dagster sensors, exported for `assignar_pipeline.definitions`."""

SENSORS: list = []

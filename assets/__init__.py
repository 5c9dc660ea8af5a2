"""Dagster assets, asset checks and their jobs, exported for `assignar_pipeline.definitions`."""

from assets.connection import connect_assignar, test_assignar_connection

ASSETS: list = []
JOBS = [test_assignar_connection, connect_assignar]

__all__ = ["ASSETS", "JOBS"]

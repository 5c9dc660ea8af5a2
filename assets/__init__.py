"""Dagster assets, asset checks and their jobs, exported for `assignar_pipeline.definitions`."""

from assets.connection import test_assignar_connection

ASSETS: list = []
JOBS = [test_assignar_connection]

__all__ = ["ASSETS", "JOBS"]

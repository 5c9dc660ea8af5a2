"""Dagster assets, asset checks and their jobs, exported for `assignar_pipeline.definitions`."""

from assets.assignar import ASSIGNAR_ASSETS
from assets.connection import connect_assignar, test_assignar_connection
from assets.pay import PAY_ASSETS

ASSETS = [*ASSIGNAR_ASSETS, *PAY_ASSETS]
JOBS = [test_assignar_connection, connect_assignar]

__all__ = ["ASSETS", "JOBS"]

"""Dagster assets, asset checks and their jobs, exported for `assignar_pipeline.definitions`."""

from assets.assignar import ASSIGNAR_ASSETS
from assets.connection import connect_assignar, test_assignar_connection
from assets.export import export_connection_job
from assets.freshness import FRESHNESS_CHECKS, FRESHNESS_JOBS
from assets.imports import initial_import_job
from assets.pay import PAY_ASSETS
from assets.preview import preview_import_job
from assets.reconcile import RECONCILE_ASSETS, RECONCILE_JOBS
from assets.sync import SYNC_JOBS

ASSETS = [*ASSIGNAR_ASSETS, *RECONCILE_ASSETS, *PAY_ASSETS]
ASSET_CHECKS = [*FRESHNESS_CHECKS]
JOBS = [
    test_assignar_connection,
    connect_assignar,
    initial_import_job,
    *RECONCILE_JOBS,
    *SYNC_JOBS,
    *FRESHNESS_JOBS,
    preview_import_job,
    export_connection_job,
]

__all__ = ["ASSETS", "ASSET_CHECKS", "JOBS"]

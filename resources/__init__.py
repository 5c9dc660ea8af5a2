"""Dagster resources, exported for `assignar_pipeline.definitions`."""

import os

import dagster as dg

from resources.assignar import AssignarResource
from resources.pay import PayDatabaseResource
from resources.scope import SyncScope

RESOURCES = {
    "assignar": AssignarResource(
        region=os.environ.get("ASSIGNAR_REGION", "na"),
        client_id=dg.EnvVar("ASSIGNAR_CLIENT_ID"),
        client_secret=dg.EnvVar("ASSIGNAR_CLIENT_SECRET"),
    ),
    "pay": PayDatabaseResource(),
    "scope": SyncScope.configure_at_launch(),
}

__all__ = ["RESOURCES", "AssignarResource", "PayDatabaseResource", "SyncScope"]

"""Dagster resources, exported for `assignar_pipeline.definitions`."""

from resources.assignar import AssignarResource
from resources.pay import PayDatabaseResource
from resources.scope import SyncScope

RESOURCES = {
    "assignar": AssignarResource(),
    "pay": PayDatabaseResource(),
    "scope": SyncScope.configure_at_launch(),
}

__all__ = ["RESOURCES", "AssignarResource", "PayDatabaseResource", "SyncScope"]

"""Dagster resources, exported for `assignar_pipeline.definitions`."""

from resources.assignar import AssignarResource
from resources.notify import NotifyResource
from resources.pay import PayDatabaseResource
from resources.scope import SyncScope

RESOURCES = {
    "assignar": AssignarResource(),
    "pay": PayDatabaseResource(),
    "scope": SyncScope.configure_at_launch(),
    "notify": NotifyResource(),
}

__all__ = ["RESOURCES", "AssignarResource", "NotifyResource", "PayDatabaseResource", "SyncScope"]

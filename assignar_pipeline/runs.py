"""How our Dagster runs are labelled and scoped, named once for the core and the Dagster layer.

Every launch (the sync schedule, the initial-import sensor, bulk imports through GraphQL, the
resolve backfills) tags its runs with what it is and scopes them with the same run config, which
the `scope` resource reads; the sync log and the notification sensor read the tags back.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: What launched a run: one of the operations below (the sync log's run kind).
OPERATION_TAG = "assignar/operation"
#: The connection keys a run covers, comma-separated (for the runs list; Dagster caps a tag).
CONNECTIONS_TAG = "assignar/connections"
SYNC = "sync"
INITIAL_IMPORT = "initial_import"
BULK_IMPORT = "bulk_import"
#: Dagster's limit on a tag value.
TAG_LIMIT = 255


def connections_tag(keys: Iterable[str]) -> str:
    """The `assignar/connections` tag value for these connection keys."""
    return ",".join(keys)[:TAG_LIMIT]


def scope_config(connections: Iterable[str], **filters: Any) -> dict[str, Any]:
    """Run config for the `scope` resource: these connections (none: every active one), and
    any filters it takes (`projects`, `workers`, ...)."""
    return {"resources": {"scope": {"config": {"connections": list(connections), **filters}}}}


def scoped_connections(run_config: dict[str, Any] | None) -> list[str]:
    """The connection keys a run's config names (`scope_config` read back); none: every one."""
    resources = (run_config or {}).get("resources") or {}
    config = (resources.get("scope") or {}).get("config") or {}
    return list(config.get("connections") or [])

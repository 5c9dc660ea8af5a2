"""The freshness checks: is each connection's Pay data as fresh as its sync frequency promises?

`data_fresh` on `pay_timesheets` and `pay_orders` runs on its own schedule (`check_freshness`,
every 15 minutes), not with a materialization: a sync that stopped produces no materialization
to check. It fails (ERROR) naming each stale connection and how old its data is; the alert
sensor tells the data engineers like any other failing check.
"""

from collections.abc import Iterator
from datetime import UTC, datetime

import dagster as dg

from assignar_pipeline.alerts import FINDINGS_KEY, findings_metadata
from assignar_pipeline.entities import BY_NAME, DATED
from assignar_pipeline.freshness import findings, freshness, grace_from_env
from assignar_pipeline.sync_settings import SettingsError
from resources.pay import PayDatabaseResource

#: The asset whose Pay data each synced entity is.
ENTITY_ASSETS = {e: BY_NAME[e].pay_asset for e in DATED}
CHECK = "data_fresh"


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(
            CHECK,
            asset=asset,
            description=f"Every connection that syncs {entity} has Pay data no older than its "
            "sync frequency plus FRESHNESS_GRACE_HOURS (default 2).",
        )
        for entity, asset in ENTITY_ASSETS.items()
    ],
    # A run of one of the assets (a backfill of pay_timesheets alone) takes its check alone.
    can_subset=True,
)
def data_fresh(
    context: dg.AssetCheckExecutionContext, pay: PayDatabaseResource
) -> Iterator[dg.AssetCheckResult]:
    try:
        grace = grace_from_env()
    except SettingsError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    with pay.engine.connect() as conn:
        found = freshness(conn, datetime.now(UTC), grace)
    selected = {key.asset_key for key in context.selected_asset_check_keys}
    for entity, asset in ENTITY_ASSETS.items():
        if dg.AssetKey(asset) not in selected:
            continue
        mine = findings(found, entity)
        stale = [f for f in mine if f.failing]
        yield dg.AssetCheckResult(
            asset_key=asset,
            check_name=CHECK,
            passed=not stale,
            severity=dg.AssetCheckSeverity.ERROR,
            description="; ".join(f"{f.subject}: {f.reasons[0]}" for f in stale) or None,
            metadata={
                "stale_connections": len(stale),
                "connections_checked": len(mine),
                "grace_hours": grace.total_seconds() / 3600,
                FINDINGS_KEY: dg.MetadataValue.json(findings_metadata(mine)),
            },
        )


check_freshness = dg.define_asset_job(
    "check_freshness",
    selection=dg.AssetSelection.checks(data_fresh),
    description="Evaluate the freshness checks (the schedule `freshness_checks` runs it).",
)

FRESHNESS_CHECKS = [data_fresh]
FRESHNESS_JOBS = [check_freshness]

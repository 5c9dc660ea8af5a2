"""Pay assets (group `pay`): staging loaded into Pay's tables through the link table."""

from collections.abc import Iterator

import dagster as dg

from assets.assignar import KINDS, OWNERS
from assets.partitions import backfill_policy, work_dates
from assets.reporting import (
    connections_in_scope,
    fail_if_connections_failed,
    per_connection_metadata,
    window_of,
)
from assignar_pipeline.checks import duplicate_timesheets, minutes_parity
from assignar_pipeline.sync import LoadResult, load_for
from resources.pay import PayDatabaseResource
from resources.scope import SyncScope


def _rows(results: list[LoadResult]) -> list[dict]:
    return [
        {
            "connection": r.connection_key,
            **r.counts.as_metadata(),
            "first_holds": "; ".join(r.counts.hold_reasons[:2]),
        }
        for r in results
    ]


def _load(
    context: dg.AssetExecutionContext,
    entity: str,
    pay: PayDatabaseResource,
    scope: SyncScope,
    *,
    dated: bool,
) -> tuple[list[LoadResult], dict]:
    connections = connections_in_scope(pay, scope)
    window = window_of(context) if dated else None
    results = load_for(pay.engine, connections, entity, run_id=context.run_id, window=window)
    loaded = sum(
        r.counts.inserted + r.counts.updated + r.counts.unchanged + r.counts.linked for r in results
    )
    metadata = per_connection_metadata(_rows(results), loaded, connections)
    metadata["held"] = sum(r.counts.held for r in results)
    return results, metadata


@dg.asset(
    group_name="pay",
    kinds=KINDS,
    owners=OWNERS,
    deps=["assignar_projects"],
)
def pay_projects(
    context: dg.AssetExecutionContext, pay: PayDatabaseResource, scope: SyncScope
) -> Iterator[dg.MaterializeResult]:
    """Pay projects linked to Assignar projects: by existing link or exact code, else created.

    A project whose name matches a Pay project without a code is held as a possible duplicate
    for reconciliation instead of being guessed.
    """
    _, metadata = _load(context, "projects", pay, scope, dated=False)
    yield dg.MaterializeResult(metadata=metadata)
    fail_if_connections_failed(context, pay)


@dg.asset(
    group_name="pay",
    kinds=KINDS,
    owners=OWNERS,
    deps=["assignar_workers"],
)
def pay_employees(
    context: dg.AssetExecutionContext, pay: PayDatabaseResource, scope: SyncScope
) -> Iterator[dg.MaterializeResult]:
    """Pay employees linked to Assignar workers by employee number or unique email.

    Any other worker is held for reconciliation (map, create or ignore); Pay's employee records
    are never overwritten from Assignar.
    """
    _, metadata = _load(context, "workers", pay, scope, dated=False)
    yield dg.MaterializeResult(metadata=metadata)
    fail_if_connections_failed(context, pay)


@dg.asset(
    group_name="pay",
    kinds=KINDS,
    owners=OWNERS,
    partitions_def=work_dates,
    backfill_policy=backfill_policy,
    deps=["assignar_timesheets", "pay_projects", "pay_employees"],
    check_specs=[
        dg.AssetCheckSpec(
            "no_duplicate_timesheets",
            asset="pay_timesheets",
            blocking=True,
            description="No Assignar timesheet is in Pay twice (the guard against paying twice).",
        ),
        dg.AssetCheckSpec(
            "minutes_parity",
            asset="pay_timesheets",
            description="Minutes per employee per day equal Assignar's for everything not held.",
        ),
    ],
)
def pay_timesheets(
    context: dg.AssetExecutionContext, pay: PayDatabaseResource, scope: SyncScope
) -> Iterator[dg.MaterializeResult]:
    """Pay timesheets, one per approved Assignar timesheet, by local work date.

    Unique on (connection, Assignar id); deleted or un-approved upstream means voided, never
    deleted; a timesheet Pay has processed or paid is never edited (the change is held).
    """
    results, metadata = _load(context, "timesheets", pay, scope, dated=True)
    ids = [c.id for c in connections_in_scope(pay, scope)]
    with pay.engine.connect() as conn:
        duplicates = duplicate_timesheets(conn, ids)
        mismatches = minutes_parity(conn, ids, window_of(context))
    metadata["minutes"] = dg.MetadataValue.json(
        {r.connection_key: r.counts.minutes for r in results}
    )
    yield dg.MaterializeResult(
        metadata=metadata,
        check_results=[
            dg.AssetCheckResult(
                check_name="no_duplicate_timesheets",
                passed=not duplicates,
                metadata={"duplicates": dg.MetadataValue.json(duplicates[:20])},
            ),
            dg.AssetCheckResult(
                check_name="minutes_parity",
                passed=not mismatches,
                metadata={
                    "mismatches": len(mismatches),
                    "first": dg.MetadataValue.json([m.__dict__ for m in mismatches[:10]]),
                },
            ),
        ],
    )
    fail_if_connections_failed(context, pay)


@dg.asset(
    group_name="pay",
    kinds=KINDS,
    owners=OWNERS,
    partitions_def=work_dates,
    backfill_policy=backfill_policy,
    deps=["assignar_orders", "pay_projects"],
)
def pay_orders(
    context: dg.AssetExecutionContext, pay: PayDatabaseResource, scope: SyncScope
) -> Iterator[dg.MaterializeResult]:
    """Pay job-costing orders from confirmed Assignar orders (teams with job costing only)."""
    _, metadata = _load(context, "orders", pay, scope, dated=True)
    yield dg.MaterializeResult(metadata=metadata)
    fail_if_connections_failed(context, pay)


PAY_ASSETS = [pay_projects, pay_employees, pay_timesheets, pay_orders]

"""Pay assets (group `pay`): staging loaded into Pay's tables through the link table."""

import functools
from collections.abc import Iterator

import dagster as dg

from assets.assignar import DB_RETRY, KINDS, OWNERS
from assets.partitions import backfill_policy, work_dates
from assets.reporting import (
    DateProgress,
    connections_in_scope,
    fail_if_connections_failed,
    per_connection_metadata,
    refuse_if_nothing_done,
    window_of,
)
from assignar_pipeline.alerts import FINDINGS_KEY, findings_metadata
from assignar_pipeline.checks import (
    conflict_findings,
    duplicate_findings,
    duplicate_timesheets,
    duplicates_description,
    minutes_parity,
    minutes_parity_description,
    parity_findings,
    sync_warning_description,
    sync_warnings,
)
from assignar_pipeline.reconcile.conflicts import (
    DUPLICATE_PROJECT,
    KIND_LABELS,
    LOCKED_CHANGED,
    RATE_DIFFERENCE,
    WORKER_MISMATCH,
)
from assignar_pipeline.reconcile.rates import refresh_stale_rates
from assignar_pipeline.steps import LoadResult, load_for, loadable
from resources.assignar import AssignarResource
from resources.pay import PayDatabaseResource
from resources.scope import SyncScope

#: The conflicts that hold each Pay asset's records (its Sync Warning check looks at these).
HOLDING_KINDS = {
    "pay_projects": (DUPLICATE_PROJECT,),
    "pay_employees": (WORKER_MISMATCH,),
    "pay_timesheets": (DUPLICATE_PROJECT, WORKER_MISMATCH, RATE_DIFFERENCE, LOCKED_CHANGED),
    "pay_orders": (DUPLICATE_PROJECT,),
}


def _sync_warning_check(asset: str) -> dg.AssetCheckSpec:
    kinds = ", ".join(KIND_LABELS[k] for k in HOLDING_KINDS[asset])
    return dg.AssetCheckSpec(
        "no_open_conflicts",
        asset=asset,
        description=f"Sync Warning (WARN): a connection in this run has open conflicts ({kinds}) "
        "that hold records back; a failure names the first ones (who, which days) and the "
        "command that lists them all.",
    )


def _rows(results: list[LoadResult], statuses: dict) -> list[dict]:
    return [
        {
            "connection": r.connection_key,
            "status": statuses[r.connection_key].state,
            **r.counts.as_metadata(),
            "first_holds": "; ".join(r.counts.hold_reasons[:2]),
        }
        for r in results
    ]


def _sync_warning(asset: str, statuses: dict, pay: PayDatabaseResource) -> dg.AssetCheckResult:
    """WARN while a connection has open conflicts of the kinds that hold this asset's records."""
    kinds = HOLDING_KINDS[asset]
    warned = {
        key: s for key, s in statuses.items() if any(s.open_conflicts.get(kind) for kind in kinds)
    }
    with pay.engine.connect() as conn:
        description = sync_warning_description(conn, warned, kinds)
    return dg.AssetCheckResult(
        check_name="no_open_conflicts",
        passed=not warned,
        severity=dg.AssetCheckSeverity.WARN,
        description=description,
        metadata={
            "connections_with_conflicts": len(warned),
            "per_connection": dg.MetadataValue.json(
                {key: s.as_metadata() for key, s in statuses.items()}
            ),
            "commands": dg.MetadataValue.md(
                "\n".join(f"- `{s.conflicts_command}`" for s in warned.values()) or "_none_"
            ),
            FINDINGS_KEY: dg.MetadataValue.json(
                findings_metadata(conflict_findings(statuses, kinds))
            ),
        },
    )


def _load(
    context: dg.AssetExecutionContext,
    entity: str,
    pay: PayDatabaseResource,
    scope: SyncScope,
    *,
    dated: bool,
    assignar: AssignarResource | None = None,
) -> tuple[list[LoadResult], dict, dict]:
    """`assignar`: where to fetch Assignar's rates first when they are stale (timesheets)."""
    connections = connections_in_scope(pay, scope)
    window = window_of(context) if dated else None
    complete = loadable(pay.engine, connections, entity, run_id=context.run_id)
    if assignar is not None:
        open_client = functools.partial(assignar.client_for, engine=pay.engine)
        for r in refresh_stale_rates(pay.engine, complete, open_client, run_id=context.run_id):
            log = context.log.error if r.error else context.log.info
            log(f"{r.connection_key}: Assignar pay rates fetched first: {r.error or r.counts}")
    results = load_for(
        pay.engine,
        complete,
        entity,
        run_id=context.run_id,
        window=window,
        on_piece=DateProgress(context, complete),
    )
    refuse_if_nothing_done(context, pay, len(results))
    loaded = sum(
        r.counts.inserted + r.counts.updated + r.counts.unchanged + r.counts.linked for r in results
    )
    with pay.engine.connect() as conn:
        statuses = sync_warnings(conn, connections)
    metadata = per_connection_metadata(_rows(results, statuses), loaded, connections)
    metadata["held"] = sum(r.counts.held for r in results)
    metadata["connection_status"] = dg.MetadataValue.json(
        {key: s.state for key, s in statuses.items()}
    )
    return results, metadata, statuses


@dg.asset(
    group_name="pay",
    kinds=KINDS,
    owners=OWNERS,
    retry_policy=DB_RETRY,
    deps=["assignar_projects"],
    check_specs=[_sync_warning_check("pay_projects")],
)
def pay_projects(
    context: dg.AssetExecutionContext, pay: PayDatabaseResource, scope: SyncScope
) -> Iterator[dg.MaterializeResult]:
    """Pay projects linked to Assignar projects: by link, exact code, or the same normalised
    name and client; created when Pay has nothing like them.

    A project that may duplicate a Pay project (similar name, or same name with another code)
    waits on a Duplicate Project conflict: merge into the Pay project, or create a new one.
    """
    _, metadata, statuses = _load(context, "projects", pay, scope, dated=False)
    yield dg.MaterializeResult(
        metadata=metadata, check_results=[_sync_warning("pay_projects", statuses, pay)]
    )
    fail_if_connections_failed(context, pay)


@dg.asset(
    group_name="pay",
    kinds=KINDS,
    owners=OWNERS,
    retry_policy=DB_RETRY,
    deps=["assignar_workers"],
    check_specs=[_sync_warning_check("pay_employees")],
)
def pay_employees(
    context: dg.AssetExecutionContext, pay: PayDatabaseResource, scope: SyncScope
) -> Iterator[dg.MaterializeResult]:
    """Pay employees linked to Assignar workers by employee number, unique email, or the same
    normalised name and date of birth.

    Any other worker waits on a Worker Mismatch conflict listing the closest Pay employees (map,
    create a new employee, or ignore); Pay's employee records are never overwritten.
    """
    _, metadata, statuses = _load(context, "workers", pay, scope, dated=False)
    yield dg.MaterializeResult(
        metadata=metadata, check_results=[_sync_warning("pay_employees", statuses, pay)]
    )
    fail_if_connections_failed(context, pay)


@dg.asset(
    group_name="pay",
    kinds=KINDS,
    owners=OWNERS,
    retry_policy=DB_RETRY,
    partitions_def=work_dates,
    backfill_policy=backfill_policy,
    deps=["assignar_timesheets", "assignar_pay_rates", "pay_projects", "pay_employees"],
    check_specs=[
        dg.AssetCheckSpec(
            "no_duplicate_timesheets",
            asset="pay_timesheets",
            blocking=True,
            description="No Assignar timesheet is in Pay twice (the guard against paying twice; "
            "ERROR, blocking: the step fails and names each one).",
        ),
        dg.AssetCheckSpec(
            "minutes_parity",
            asset="pay_timesheets",
            description="Minutes per employee per day equal Assignar's for everything not held. "
            "ERROR, not blocking: a payroll correction made in Pay is legitimate and shows here "
            "(naming the connection, employee and day) until Assignar agrees; the run goes on.",
        ),
        _sync_warning_check("pay_timesheets"),
    ],
)
def pay_timesheets(
    context: dg.AssetExecutionContext,
    assignar: AssignarResource,
    pay: PayDatabaseResource,
    scope: SyncScope,
) -> Iterator[dg.MaterializeResult]:
    """Pay timesheets, one per approved Assignar timesheet, by local work date, with lines priced
    at Pay's rate (`timesheet_line.rate`, `amount`, `rate_source`).

    Unique on (connection, Assignar id); deleted or un-approved upstream means voided, never
    deleted. A timesheet whose worker, project or rate waits on a conflict is held and loads
    when the conflict is resolved; one Pay has processed or paid is never edited (an upstream
    change becomes an adjustment conflict). Assignar's pay rates older than an hour are fetched
    first, so every timesheet is checked for a Rate Difference.
    """
    results, metadata, statuses = _load(
        context, "timesheets", pay, scope, dated=True, assignar=assignar
    )
    in_scope = connections_in_scope(pay, scope)
    ids = [c.id for c in in_scope]
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
                severity=dg.AssetCheckSeverity.ERROR,
                description=duplicates_description(duplicates),
                metadata={
                    "duplicates": len(duplicates),
                    "first": dg.MetadataValue.json([d.as_metadata() for d in duplicates[:20]]),
                    FINDINGS_KEY: dg.MetadataValue.json(
                        findings_metadata(duplicate_findings(in_scope, duplicates))
                    ),
                },
            ),
            dg.AssetCheckResult(
                check_name="minutes_parity",
                passed=not mismatches,
                severity=dg.AssetCheckSeverity.ERROR,
                description=minutes_parity_description(mismatches),
                metadata={
                    "mismatches": len(mismatches),
                    "first": dg.MetadataValue.json([m.as_metadata() for m in mismatches[:20]]),
                    FINDINGS_KEY: dg.MetadataValue.json(
                        findings_metadata(parity_findings(in_scope, mismatches))
                    ),
                },
            ),
            _sync_warning("pay_timesheets", statuses, pay),
        ],
    )
    fail_if_connections_failed(context, pay)


@dg.asset(
    group_name="pay",
    kinds=KINDS,
    owners=OWNERS,
    retry_policy=DB_RETRY,
    partitions_def=work_dates,
    backfill_policy=backfill_policy,
    deps=["assignar_orders", "pay_projects"],
    check_specs=[_sync_warning_check("pay_orders")],
)
def pay_orders(
    context: dg.AssetExecutionContext, pay: PayDatabaseResource, scope: SyncScope
) -> Iterator[dg.MaterializeResult]:
    """Pay job-costing orders from confirmed Assignar orders (teams with job costing only)."""
    _, metadata, statuses = _load(context, "orders", pay, scope, dated=True)
    yield dg.MaterializeResult(
        metadata=metadata, check_results=[_sync_warning("pay_orders", statuses, pay)]
    )
    fail_if_connections_failed(context, pay)


PAY_ASSETS = [pay_projects, pay_employees, pay_timesheets, pay_orders]

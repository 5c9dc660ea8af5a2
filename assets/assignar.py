"""Extract assets (group `assignar`): Assignar's records, validated, in typed staging tables."""

import functools
from collections.abc import Iterator

import dagster as dg

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
from assignar_pipeline.checks import open_quarantine, quarantine_description, quarantine_findings
from assignar_pipeline.entities import BY_NAME
from assignar_pipeline.extract import ExtractResult
from assignar_pipeline.steps import extract_for, imports
from assignar_pipeline.synclog import note_run, run_kind
from resources.assignar import AssignarResource
from resources.pay import PayDatabaseResource
from resources.scope import SyncScope

KINDS = {"python", "sqlalchemy"}
OWNERS = ["team:data-engineering"]
#: Steps that call Assignar; the instance's `concurrency: pools:` bounds how many run at once.
API_POOL = "assignar_api"
# Step retries are for what the client's own retries do not cover: a dropped database
# connection, a killed step process. Every write is idempotent under the per-connection lock and
# newer-wins, notifications come from run-status sensors (once per run, never per attempt), and
# refusals and per-connection failures raise `dg.Failure(allow_retries=False)`: never retried.
API_RETRY = dg.RetryPolicy(max_retries=2, delay=10, backoff=dg.Backoff.EXPONENTIAL,
                           jitter=dg.Jitter.PLUS_MINUS)  # fmt: skip
#: Loading into Pay touches only the database: a shorter first wait.
DB_RETRY = dg.RetryPolicy(max_retries=3, delay=5, backoff=dg.Backoff.EXPONENTIAL,
                          jitter=dg.Jitter.PLUS_MINUS)  # fmt: skip


def _quarantine_check(entity: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        "quarantine_empty",
        asset=BY_NAME[entity].extract_asset,
        description="No record of this window is in quarantine (WARN: fix them in Assignar; a "
        "failure names the connection, record, worker, day and reason).",
    )


def _extract(
    context: dg.AssetExecutionContext,
    entity: str,
    assignar: AssignarResource,
    pay: PayDatabaseResource,
    scope: SyncScope,
    *,
    dated: bool,
) -> Iterator[dg.MaterializeResult]:
    window = window_of(context) if dated else None
    note_run(pay.engine, context.run_id, run_kind(context.run.tags))
    connections = connections_in_scope(pay, scope)
    results = extract_for(
        pay.engine,
        connections,
        functools.partial(assignar.client_for, engine=pay.engine),
        entity,
        run_id=context.run_id,
        window=window,
        scope=scope.filters(),
        on_piece=DateProgress(context, [c for c in connections if imports(c, entity)]),
    )
    for result in results:
        _log(context, result)
    refuse_if_nothing_done(context, pay, sum(1 for r in results if not r.error))
    rows = [{"connection": r.connection_key, **r.as_metadata()} for r in results]
    with pay.engine.connect() as conn:
        quarantined = open_quarantine(conn, entity, [c.id for c in connections], window)
    open_by_connection = {
        q.connection: {"count": q.count, "reasons": list(q.reasons)} for q in quarantined
    }
    yield dg.MaterializeResult(
        metadata={
            **per_connection_metadata(rows, sum(r.fetched for r in results), connections),
            "api_requests": sum(r.api_requests for r in results),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="quarantine_empty",
                passed=not quarantined,
                severity=dg.AssetCheckSeverity.WARN,
                description=quarantine_description(entity, quarantined),
                metadata={
                    "quarantined": sum(q.count for q in quarantined),
                    "per_connection": dg.MetadataValue.json(open_by_connection),
                    FINDINGS_KEY: dg.MetadataValue.json(
                        findings_metadata(quarantine_findings(connections, quarantined))
                    ),
                },
            )
        ],
    )
    fail_if_connections_failed(context, pay)


def _log(context: dg.AssetExecutionContext, result: ExtractResult) -> None:
    if result.error:
        context.log.error(f"{result.connection_key}: {result.error}")
    else:
        context.log.info(f"{result.connection_key}: {result.as_metadata()}")


@dg.asset(
    group_name="assignar",
    kinds=KINDS,
    owners=OWNERS,
    pool=API_POOL,
    retry_policy=API_RETRY,
    check_specs=[_quarantine_check("projects")],
)
def assignar_projects(
    context: dg.AssetExecutionContext,
    assignar: AssignarResource,
    pay: PayDatabaseResource,
    scope: SyncScope,
) -> Iterator[dg.MaterializeResult]:
    """Assignar projects of each connection (codes, clients, active flag), staged as fetched.

    A snapshot: every run refreshes all projects in scope; projects deleted in Assignar are
    marked voided, never removed.
    """
    yield from _extract(context, "projects", assignar, pay, scope, dated=False)


@dg.asset(
    group_name="assignar",
    kinds=KINDS,
    owners=OWNERS,
    pool=API_POOL,
    retry_policy=API_RETRY,
    check_specs=[_quarantine_check("workers")],
)
def assignar_workers(
    context: dg.AssetExecutionContext,
    assignar: AssignarResource,
    pay: PayDatabaseResource,
    scope: SyncScope,
) -> Iterator[dg.MaterializeResult]:
    """Assignar workers (API `users`) of each connection: employee ids, names, emails, status."""
    yield from _extract(context, "workers", assignar, pay, scope, dated=False)


@dg.asset(
    group_name="assignar",
    kinds=KINDS,
    owners=OWNERS,
    pool=API_POOL,
    partitions_def=work_dates,
    backfill_policy=backfill_policy,
    retry_policy=API_RETRY,
    # A run's project and worker filters resolve against staged projects and workers: a run
    # that also refreshes those must do so first.
    deps=["assignar_projects", "assignar_workers"],
    check_specs=[_quarantine_check("timesheets")],
)
def assignar_timesheets(
    context: dg.AssetExecutionContext,
    assignar: AssignarResource,
    pay: PayDatabaseResource,
    scope: SyncScope,
) -> Iterator[dg.MaterializeResult]:
    """Assignar timesheets by local work date: shift times, minutes, status, activity lines.

    Each run is a full refresh of its dates for each connection: new and edited timesheets are
    staged (newer wins), vanished ones voided, invalid ones quarantined with their reason.
    """
    yield from _extract(context, "timesheets", assignar, pay, scope, dated=True)


@dg.asset(
    group_name="assignar",
    kinds=KINDS,
    owners=OWNERS,
    pool=API_POOL,
    partitions_def=work_dates,
    backfill_policy=backfill_policy,
    retry_policy=API_RETRY,
    # A run's project and worker filters resolve against staged projects and workers: a run
    # that also refreshes those must do so first.
    deps=["assignar_projects", "assignar_workers"],
    check_specs=[_quarantine_check("orders")],
)
def assignar_orders(
    context: dg.AssetExecutionContext,
    assignar: AssignarResource,
    pay: PayDatabaseResource,
    scope: SyncScope,
) -> Iterator[dg.MaterializeResult]:
    """Assignar orders by start date (confirmed ones by default), for teams with job costing."""
    yield from _extract(context, "orders", assignar, pay, scope, dated=True)


ASSIGNAR_ASSETS = [assignar_projects, assignar_workers, assignar_timesheets, assignar_orders]

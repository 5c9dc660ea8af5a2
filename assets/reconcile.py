"""Reconciliation in Dagster: Assignar's pay rates (evidence for Rate Differences), and the
"Resolve Conflicts" job whose Launchpad config takes the same choices as
`assignar-pipeline conflicts resolve`.

The job records the resolutions and loads the held records at once (in the core, one
transaction), then launches a backfill of `pay_timesheets` and `pay_orders` over exactly the dates
it unblocked, for the connections concerned, so that those partitions' materializations and
checks (minutes parity, Sync Warning) reflect the decision.
"""

from collections.abc import Iterator
from datetime import date, timedelta

import dagster as dg
from pydantic import Field

from assets.assignar import API_RETRY, KINDS, OWNERS
from assets.reporting import (
    connections_in_scope,
    fail_if_connections_failed,
    refuse_if_nothing_done,
    table_markdown,
)
from assignar_pipeline.bulk import BulkImportError, dates_backfill_params, launch_backfill
from assignar_pipeline.entities import BY_NAME, DATED
from assignar_pipeline.reconcile.rates import refresh_rates
from assignar_pipeline.reconcile.resolve import Choice, ResolutionError, resolve_conflicts
from assignar_pipeline.windows import format_window
from resources.assignar import AssignarResource
from resources.notify import NotifyResource
from resources.pay import PayDatabaseResource
from resources.scope import SyncScope

#: The partitioned assets a resolution re-materializes for the dates it unblocked.
UNBLOCKED_ASSETS = tuple(BY_NAME[e].pay_asset for e in DATED)


@dg.asset(group_name="assignar", kinds=KINDS, owners=OWNERS, retry_policy=API_RETRY)
def assignar_pay_rates(
    context: dg.AssetExecutionContext,
    assignar: AssignarResource,
    pay: PayDatabaseResource,
    scope: SyncScope,
) -> Iterator[dg.MaterializeResult]:
    """Assignar's pay rates per task (role) and pay code, from each task's pay-rate groups.

    Evidence only: a timesheet is paid at Pay's rate, and where Assignar's rate for the
    timesheet's task differs, the timesheet waits on a Rate Difference conflict.
    """
    connections = connections_in_scope(pay, scope)
    results = refresh_rates(pay.engine, connections, assignar.client_for, run_id=context.run_id)
    rows = [
        {"connection": r.connection_key, **r.counts, **({"error": r.error} if r.error else {})}
        for r in results
    ]
    for r in results:
        log = context.log.error if r.error else context.log.info
        log(f"{r.connection_key}: {r.error or r.counts}")
    refuse_if_nothing_done(context, pay, sum(1 for r in results if not r.error))
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": sum(
                r.counts.get("inserted", 0)
                + r.counts.get("updated", 0)
                + r.counts.get("unchanged", 0)
                for r in results
            ),
            "connections": dg.MetadataValue.md(table_markdown(rows)),
        }
    )
    fail_if_connections_failed(context, pay)


class ResolutionConfig(dg.Config):
    """One decision, as `assignar-pipeline conflicts resolve` takes it."""

    conflict: str = Field(
        description="Conflict id, or its first 8 characters (`assignar-pipeline conflicts list`)."
    )
    choice: str = Field(
        description="merge | create_new (Duplicate Project); map | create_employee | ignore "
        "(Worker Mismatch); use_assignar_rate | keep_pay_rate | set_rate (Rate Difference); "
        "accept_adjustment | reject_adjustment (a timesheet Pay already processed)."
    )
    target: int | None = Field(
        default=None, description="merge: the Pay project id; map: the Pay employee id."
    )
    code: str | None = Field(
        default=None, description="create_new: the new Pay project's code ('' for none)."
    )
    employee_number: str | None = Field(
        default=None, description="create_employee: the new employee's number ('' for none)."
    )
    rate: str | None = Field(default=None, description="set_rate: the rate, e.g. '45.50'.")
    scope: str | None = Field(
        default=None,
        description="Rates: going_forward (a new Pay rate from effective_from; default) or "
        "occurrence (only the timesheets of this disagreement; Pay's rates untouched).",
    )
    effective_from: str | None = Field(
        default=None,
        description="going_forward: first day of the new rate, YYYY-MM-DD (default: the "
        "earliest held work date).",
    )
    note: str | None = Field(default=None, description="Why (kept with the resolution).")


#: The example `resolutions` holds until replaced (the Launchpad's "Scaffold all default
#: config" writes it out): the shape of a whole decision, on a conflict id no conflict has, so
#: that launching it unchanged decides nothing and is refused with where to find the real ids.
#: (A job `config=` preset would show it at once, but its config mapping keeps the definitions'
#: resource config, so resources given at execution would silently be replaced.)
EXAMPLE_RESOLUTION = {
    "conflict": "replace-me",
    "choice": "map",
    "target": 16,
    "note": "e.g. the demo's 823f8fe5: Priya Nguyen is Pay's Pria Nguyen (employee 16)",
}


class ResolveConflictsConfig(dg.Config):
    """Who decides, and the decisions (applied together, or none if one is refused)."""

    decided_by: str = Field(
        description="Email of the Pay user deciding: a member of the connection's team whose "
        "role has the permission (integrations.manage; rates.edit for rates; payroll.manage "
        "for adjustments)."
    )
    resolutions: list[ResolutionConfig] = Field(
        default=[EXAMPLE_RESOLUTION],
        description="The decisions. The default shows the shape of one and decides nothing: "
        "replace `replace-me` with an id from `assignar-pipeline conflicts list` and the choice "
        "and target from `assignar-pipeline conflicts show ID`.",
    )
    launch_runs: bool = Field(
        default=True,
        description="Launch a backfill of pay_timesheets and pay_orders over the dates the "
        "resolutions unblocked.",
    )


@dg.op
def resolve_conflicts_op(
    context: dg.OpExecutionContext,
    config: ResolveConflictsConfig,
    pay: PayDatabaseResource,
    notify: NotifyResource,
) -> dict:
    """Record the resolutions, load what they unblock, and launch runs for those dates."""
    try:
        choices = [
            Choice(
                conflict=r.conflict,
                choice=r.choice,
                target=r.target,
                code=r.code,
                employee_number=r.employee_number,
                rate=r.rate,  # type: ignore[arg-type]  # checked by the core
                scope=r.scope,
                effective_from=date.fromisoformat(r.effective_from) if r.effective_from else None,
                note=r.note,
            )
            for r in config.resolutions
        ]
    except ValueError as exc:
        raise dg.Failure(
            description=f"Refused: effective_from must be YYYY-MM-DD ({exc})", allow_retries=False
        ) from None
    try:
        result = resolve_conflicts(pay.engine, choices, config.decided_by, run_id=context.run_id)
    except ResolutionError as exc:
        raise dg.Failure(description=f"Refused: {exc}", allow_retries=False) from None
    for r in result.resolved:
        state = "already resolved" if r.already else r.effect
        context.log.info(f"{r.connection_key} {r.conflict_id[:8]} {r.decision}: {state}")
    backfills = {}
    if config.launch_runs:
        for key, days in result.unblocked.items():
            dates = format_window(days[0], days[-1] + timedelta(days=1))
            try:
                backfills[key] = _launch(context, notify, key, days)
            except BulkImportError as exc:
                backfills[key] = f"not launched: {exc}"
                context.log.warning(
                    f"{key}: {result.released[key]} held record(s) loaded into Pay; the backfill "
                    f"of {', '.join(UNBLOCKED_ASSETS)} for {len(days)} date(s) of {dates} was "
                    f"not launched ({exc}): materialize those partitions to refresh them."
                )
                continue
            context.log.info(
                f"{key}: {result.released[key]} held record(s) loaded; backfill "
                f"{backfills[key]} re-materializes {len(days)} date(s) of {dates}"
            )
    summary = {
        "resolved": [
            {"conflict": r.conflict_id, "decision": r.decision, "already": r.already}
            for r in result.resolved
        ],
        "unblocked": {k: [d.isoformat() for d in v] for k, v in result.unblocked.items()},
        "backfills": backfills,
    }
    context.add_output_metadata(
        {
            "resolved": len(result.resolved),
            "unblocked_dates": dg.MetadataValue.json(summary["unblocked"]),
            "backfills": dg.MetadataValue.json(backfills),
        }
    )
    return summary


def _launch(
    context: dg.OpExecutionContext, notify: NotifyResource, key: str, days: list[date]
) -> str:
    """A backfill of the unblocked assets over exactly `days`, for connection `key` only,
    launched like a bulk import: through the webserver's GraphQL API."""
    params = dates_backfill_params(
        UNBLOCKED_ASSETS,
        days,
        [key],
        tags={"assignar/resolve_run": context.run_id, "assignar/connection": key},
        title=f"Resolve conflicts: {key}",
        description=f"Dates unblocked by resolve_conflicts run {context.run_id}",
    )
    return launch_backfill(notify.graphql_url(), params)


@dg.job(
    name="resolve_conflicts",
    description="Resolve Conflicts: the same choices as `assignar-pipeline conflicts resolve`; "
    "held timesheets and orders load at once, and runs are launched for the dates unblocked. "
    "Scaffold all default config in the Launchpad for a worked example.",
)
def resolve_conflicts_job() -> None:
    resolve_conflicts_op()


RECONCILE_ASSETS = [assignar_pay_rates]
RECONCILE_JOBS = [resolve_conflicts_job]

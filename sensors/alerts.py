"""Alerts: every asset check that starts failing (ERROR or WARN) or passes again, and every job
that starts failing, told once to the data engineers and, for the checks that concern a
connection, to its team.

`alert_on_checks` reads each check's evaluations through the instance's event log storage
(`get_asset_check_execution_history`, which works on every storage, run-sharded SQLite included)
after a cursor per check, so each evaluation is read once; `assignar_pipeline.alerts` decides
what changed and whom to tell, and keeps the state in the Pay database, so a restart or a
re-evaluated tick sends nothing twice. Run failures are told by `run_alert`, which the
run-status sensors in `sensors/notifications.py` call for every job.
"""

import json
from datetime import UTC, date, datetime, timedelta
from urllib.parse import quote, urlencode

import dagster as dg

from assets import ASSET_CHECKS, ASSETS
from assignar_pipeline.alerts import (
    FINDINGS_KEY,
    Evaluation,
    Finding,
    Recipients,
    check_source,
    evaluate_and_alert,
    findings_from_metadata,
    job_source,
)
from assignar_pipeline.runs import BULK_IMPORT, INITIAL_IMPORT, SYNC
from assignar_pipeline.status import failed_in_run
from assignar_pipeline.synclog import run_kind
from assignar_pipeline.windows import format_window
from resources.notify import NotifyResource
from resources.pay import PayDatabaseResource
from sensors.timing import interval

#: Every check of the definitions, with what it verifies (its spec's description).
CHECKS: dict[dg.AssetCheckKey, str] = {
    spec.key: spec.description or ""
    for definition in [*ASSETS, *ASSET_CHECKS]
    for spec in definition.check_specs
}
#: Evaluations read per check and tick; more than this between two ticks: the newest win.
HISTORY_LIMIT = 100
DAY = timedelta(days=1)
#: Runs of these kinds cover connections: their failures are told per connection.
CONNECTION_RUNS = (SYNC, INITIAL_IMPORT, BULK_IMPORT)


def check_url(ui_url: str, key: dg.AssetCheckKey) -> str:
    """The check's own panel in the Dagster UI (the asset's Checks tab, this check open)."""
    path = "/".join(quote(part, safe="") for part in key.asset_key.path)
    query = urlencode({"view": "checks", "checkDetail": key.name})
    return f"{ui_url}/assets/{path}?{query}"


def run_window(tags: dict[str, str], partition: str | None = None) -> str | None:
    """The partition or partition range a run covered, from its tags."""
    if partition:
        return partition
    start = tags.get("dagster/asset_partition_range_start")
    if start:
        end = tags.get("dagster/asset_partition_range_end", start)
        last = date.fromisoformat(end)
        return start if end == start else format_window(date.fromisoformat(start), last + DAY)
    return tags.get("dagster/partition")


def check_evaluation(
    instance: dg.DagsterInstance, record, ui_url: str, description: str
) -> Evaluation:
    """An `Evaluation` from one completed check execution record."""
    data = record.event.asset_check_evaluation
    key = record.key
    metadata = data.metadata.get(FINDINGS_KEY)
    run = instance.get_run_by_id(record.run_id)
    return Evaluation(
        source=check_source(key.asset_key.to_user_string(), key.name),
        kind="check",
        name=key.name,
        order=record.id,
        at=datetime.fromtimestamp(record.event.timestamp, UTC),
        findings=findings_from_metadata(
            metadata.value if metadata is not None else None, data.passed, data.description
        ),
        url=check_url(ui_url, key),
        asset=key.asset_key.to_user_string(),
        severity=data.severity.value,
        description=description or None,
        window=run_window(dict(run.tags) if run else {}, record.partition),
        run_id=record.run_id,
    )


def _tell(context, pay, notify, evaluation: Evaluation, recipients: Recipients) -> int:
    alerts, deliveries = evaluate_and_alert(pay.engine, evaluation, notify.smtp(), recipients)
    for alert in alerts:
        context.log.info(
            f"{alert.event}: {evaluation.title} for {alert.audience}: {alert.subjects}"
        )
    for d in deliveries:
        outcome = "sent" if d.sent else f"NOT sent: {d.error}"
        context.log.info(f"  {d.channel} to {d.connection_key} ({d.target}): {outcome}")
    if alerts and not recipients.enabled:
        context.log.warning(
            "No data-engineering recipients: set ALERT_EMAILS and/or ALERT_WEBHOOK_URL where the "
            "Dagster daemon runs."
        )
    return len(alerts)


@dg.sensor(
    minimum_interval_seconds=interval(60),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Tells data engineers (ALERT_EMAILS, ALERT_WEBHOOK_URL) and the teams concerned "
    "when an asset check starts failing (ERROR or WARN) and when it passes again; once each.",
)
def alert_on_checks(
    context: dg.SensorEvaluationContext, pay: PayDatabaseResource, notify: NotifyResource
):
    recipients = Recipients.from_env()
    cursor: dict[str, int] = json.loads(context.cursor) if context.cursor else {}
    storage = context.instance.event_log_storage
    told = read = 0
    for key, description in CHECKS.items():
        name = key.to_user_string()
        records = storage.get_asset_check_execution_history(key, limit=HISTORY_LIMIT)
        completed = [r for r in records if r.status.value != "PLANNED"]
        after = cursor.get(name)
        if after is None:  # first sight: the check's current state, not its whole history
            after = completed[0].id - 1 if completed else 0
        waiting = None  # the oldest evaluation still running: read again next tick
        for record in sorted((r for r in records if r.id > after), key=lambda r: r.id):
            if record.status.value == "PLANNED":
                run = context.instance.get_run_by_id(record.run_id)
                if waiting is None and run is not None and not run.is_finished:
                    waiting = record.id
                continue
            read += 1
            evaluation = check_evaluation(context.instance, record, notify.ui_url(), description)
            told += _tell(context, pay, notify, evaluation, recipients)
        newest = max((r.id for r in records), default=after)
        cursor[name] = waiting - 1 if waiting is not None else max(after, newest)
    result = {"cursor": json.dumps(cursor, sort_keys=True)}
    if not told:
        result["skip_reason"] = f"{read} check evaluation(s) read; no check changed state."
    return dg.SensorResult(**result)


def run_alert(
    context,
    pay: PayDatabaseResource,
    notify: NotifyResource,
    run: dg.DagsterRun,
    *,
    failed: bool,
    message: str | None = None,
    connections: list[str] | None = None,
) -> None:
    """Tell the data engineers that a job started failing, or succeeds again.

    Per connection for syncs and imports (a sync failing for one team in every hourly batch is
    told once, and its recovery once), else for the job as a whole. `connections`: the keys the
    run covered.
    """
    record = context.instance.get_run_record_by_id(run.run_id)
    ended = record.end_time if record and record.end_time else datetime.now(UTC).timestamp()
    reason = message or "The run failed."
    if run_kind(run.tags) in CONNECTION_RUNS and connections:
        # A connection the run covered without an error of its own passed in this run.
        errors = failed_in_run(pay.engine, run.run_id) if failed else {}
        findings = [
            Finding(key, True, 0, (errors.get(key) or reason,))
            if failed and (key in errors or not errors)
            else Finding(key, False)
            for key in dict.fromkeys([*connections, *errors])
        ]
    else:
        findings = [Finding("", failed, 0, (reason,) if failed else ())]
    evaluation = Evaluation(
        source=job_source(run.job_name),
        kind="run",
        name=run.job_name,
        order=int(ended * 1000),
        at=datetime.fromtimestamp(ended, UTC),
        findings=findings,
        url=f"{notify.ui_url()}/runs/{run.run_id}",
        description=message,
        window=run_window(dict(run.tags)),
        run_id=run.run_id,
    )
    _tell(context, pay, notify, evaluation, Recipients.from_env())


ALERT_SENSORS = [alert_on_checks]

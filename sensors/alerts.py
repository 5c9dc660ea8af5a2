"""Alerts: every asset check that starts failing (ERROR or WARN) or passes again, and every job
that starts failing, told once to the data engineers and, for the checks that concern a
connection, to its team.

`alert_on_checks` reads each check's evaluations through the instance's event log storage
(`get_latest_asset_check_execution_by_key` and `get_asset_check_execution_history`, which work on
every storage, run-sharded SQLite included) after a cursor per check, so each evaluation is read
once: a tick first asks for the newest evaluation of every check in one query, and reads a check's
history only when it has something new or an evaluation still running. `assignar_pipeline.alerts`
decides what changed and whom to tell, and keeps the state in the Pay database, so a restart or a
re-evaluated tick sends nothing twice. Run failures are told by `run_alert`, which the
run-status sensors in `sensors/notifications.py` call for every job.
"""

import json
from dataclasses import dataclass
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


@dataclass
class CheckCursor:
    """Per check: the newest evaluation id read (`after`), and the evaluations planned by runs
    still going (`waiting`), read again once they complete.

    Serialized as `{check: after}` while nothing waits (the form earlier versions wrote, read
    as such), else `{"after": {...}, "waiting": {...}}`.
    """

    after: dict[str, int]
    waiting: dict[str, list[int]]

    @classmethod
    def parse(cls, text: str | None) -> "CheckCursor":
        data = json.loads(text) if text else {}
        if "after" in data and isinstance(data["after"], dict):
            return cls(dict(data["after"]), {k: list(v) for k, v in data["waiting"].items()})
        return cls(dict(data), {})

    def dumps(self) -> str:
        waiting = {name: ids for name, ids in self.waiting.items() if ids}
        if not waiting:
            return json.dumps(self.after, sort_keys=True)
        return json.dumps({"after": self.after, "waiting": waiting}, sort_keys=True)


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
    cursor = CheckCursor.parse(context.cursor)
    storage = context.instance.event_log_storage
    newest = storage.get_latest_asset_check_execution_by_key(list(CHECKS))
    runs: dict[str, bool] = {}  # run id -> still running, asked once per tick

    def running(run_id: str) -> bool:
        if run_id not in runs:
            run = context.instance.get_run_by_id(run_id)
            runs[run_id] = run is not None and not run.is_finished
        return runs[run_id]

    told = read = 0
    for key, description in CHECKS.items():
        name = key.to_user_string()
        latest = newest.get(key)
        after, waiting = cursor.after.get(name), cursor.waiting.get(name, ())
        if after is not None and not waiting and (latest is None or latest.id <= after):
            continue  # nothing new for this check: its history is not read
        records = storage.get_asset_check_execution_history(key, limit=HISTORY_LIMIT)
        if after is None:  # first sight: the check's current state, not its whole history
            completed = [r.id for r in records if r.status.value != "PLANNED"]
            after = completed[0] - 1 if completed else 0
        still_waiting = []
        for record in sorted(records, key=lambda r: r.id):
            if record.id <= after and record.id not in waiting:
                continue
            if record.status.value == "PLANNED":
                if running(record.run_id):  # evaluated later: look again next tick
                    still_waiting.append(record.id)
                continue
            read += 1
            evaluation = check_evaluation(context.instance, record, notify.ui_url(), description)
            told += _tell(context, pay, notify, evaluation, recipients)
        cursor.after[name] = max([after, *(r.id for r in records)])
        cursor.waiting[name] = still_waiting
    result = {"cursor": cursor.dumps()}
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

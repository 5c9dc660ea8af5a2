"""Alerts: asset checks that start failing, stay failing and recover, and jobs that fail, told
once each to the data engineers (ALERT_EMAILS, ALERT_WEBHOOK_URL) and, for the checks that
concern a connection, to its team; through a real SMTP server and a real webhook receiver on
loopback, with the sensors evaluated on a real Dagster instance."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta

import dagster as dg
import httpx
import pytest
import sqlalchemy as sa

from assignar_pipeline.alerts import (
    Evaluation,
    Finding,
    Recipients,
    State,
    alerts_for,
    changes,
)
from assignar_pipeline.definitions import defs
from assignar_pipeline.pay import tables as t
from assignar_pipeline.sync_settings import SettingsChange, SettingsError, change_settings
from resources import PayDatabaseResource
from sensors.alerts import CheckCursor, alert_on_checks
from sensors.notifications import notify_on_failure, notify_on_success
from tests.support.notify import Inbox, WebhookReceiver, notify_resource, smtp_server
from tests.support.pipeline import LAST_4_WEEKS, make_pipeline
from tests.support.sync import add_connection, run_sync

UI = "http://dagster.example:3000"
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _evaluation(order: int, *findings: Finding, name: str = "quarantine_empty") -> Evaluation:
    return Evaluation(
        source=f"assignar_timesheets:{name}",
        kind="check",
        name=name,
        order=order,
        at=T0 + timedelta(minutes=order),
        findings=list(findings),
        url=f"{UI}/assets/assignar_timesheets?view=checks&checkDetail={name}",
        asset="assignar_timesheets",
        severity="WARN",
    )


def test_only_a_change_of_state_is_news():
    """Never seen and failing, or passing → failing: failed; failing → passing: recovered;
    failing again, passing again, a first pass, or an evaluation not newer: nothing."""
    failing, passing = Finding("demo", True, 2, ("bad row",)), Finding("demo", False)
    assert [c.event for c in changes(_evaluation(1, failing), {})] == ["failed"]
    assert changes(_evaluation(1, passing), {}) == []
    was_failing = {"demo": State("failing", T0, 5)}
    assert changes(_evaluation(6, failing), was_failing) == []
    assert [c.event for c in changes(_evaluation(6, passing), was_failing)] == ["recovered"]
    assert changes(_evaluation(5, passing), was_failing) == []  # seen already
    assert changes(_evaluation(4, passing), was_failing) == []  # older than what is known
    was_passing = {"demo": State("passing", T0, 5)}
    assert changes(_evaluation(6, passing), was_passing) == []
    assert [c.event for c in changes(_evaluation(6, failing), was_passing)] == ["failed"]


def test_teams_hear_only_of_the_checks_that_concern_them():
    """Quarantine, conflicts and minutes parity reach the connection's team as well as the data
    engineers; a duplicate-timesheet check (a pipeline fault) reaches the data engineers only."""
    failing = Finding("demo", True, 1, ("quarantined: total_time is not a number",))
    quarantine = _evaluation(1, failing)
    assert [a.audience for a in alerts_for(quarantine, changes(quarantine, {}))] == [
        "data-engineering",
        "demo",
    ]
    duplicates = _evaluation(1, failing, name="no_duplicate_timesheets")
    assert [a.audience for a in alerts_for(duplicates, changes(duplicates, {}))] == [
        "data-engineering"
    ]


def test_bad_recipient_settings_say_what_to_fix():
    """ALERT_EMAILS that is not a list of addresses, or an ALERT_WEBHOOK_URL that is not a URL,
    is refused naming the variable."""
    with pytest.raises(SettingsError, match="ALERT_EMAILS holds 'data-eng'"):
        Recipients.from_env({"ALERT_EMAILS": "data-eng"})
    with pytest.raises(SettingsError, match="ALERT_WEBHOOK_URL must be an http"):
        Recipients.from_env({"ALERT_WEBHOOK_URL": "hooks.slack.com/x"})
    assert Recipients.from_env({"ALERT_EMAILS": "a@x.example, b@x.example"}).emails == (
        "a@x.example",
        "b@x.example",
    )


# -- on a real pipeline, instance, SMTP server and webhook receiver -----------------------------


@pytest.fixture
def instance(tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        yield instance


@pytest.fixture
def pipeline(pay_engine, simulator, instance, monkeypatch):
    return make_pipeline(pay_engine, simulator, instance, monkeypatch)


@pytest.fixture
def inbox():
    inbox = Inbox()
    server = smtp_server(inbox)
    server.start()
    yield inbox, server
    server.stop()


@pytest.fixture
def hooks(monkeypatch):
    """Two receivers: the data engineers' (ALERT_WEBHOOK_URL, through env:NAME) and a team's."""
    with WebhookReceiver() as engineers, WebhookReceiver() as team:
        monkeypatch.setenv("DATA_ENG_HOOK", engineers.url)
        monkeypatch.setenv("ALERT_WEBHOOK_URL", "env:DATA_ENG_HOOK")
        monkeypatch.setenv("ALERT_EMAILS", "data-eng@example.com, oncall@example.com")
        yield engineers, team


def _resources(pipeline, server) -> dict:
    return {"pay": PayDatabaseResource(url=pipeline.url), "notify": notify_resource(server)}


def _tick(pipeline, server, cursor: str | None = None) -> str | None:
    """One evaluation of the check-alert sensor, as the daemon makes it; returns its cursor."""
    with dg.build_sensor_context(
        instance=pipeline.instance, cursor=cursor, resources=_resources(pipeline, server)
    ) as context:
        result = alert_on_checks(context)
    return result.cursor


def _malformed_record(pipeline) -> None:
    httpx.post(
        f"{pipeline.simulator.base_url}/_simulator/faults",
        json={"kind": "malformed_record", "count": 1, "path": "/v2/timesheets-expanded"},
    ).raise_for_status()


def _texts(hook) -> list[dict]:
    return [json.loads(body) for _, body in hook.received]


@pytest.mark.parametrize("pay_engine", ["sqlite"], indirect=True)
def test_a_check_that_fails_stays_failing_and_recovers_is_told_once_each(pipeline, inbox, hooks):
    """A malformed record fails quarantine_empty: the data engineers (two emails, webhook) and
    the demo team (email, webhook) hear it once, naming the connection, asset, window, count,
    reason and the check's link; a run where it stays failing, and a sensor whose cursor was
    lost, send nothing; the run where it passes sends one recovery notice to each."""
    smtp_inbox, server = inbox
    engineers, team = hooks
    change_settings(
        pipeline.engine,
        "demo",
        SettingsChange(notify_emails="payroll@example.com", webhook_url=team.url),
    )
    _malformed_record(pipeline)
    assert pipeline.materialize(["assignar_timesheets"]).success

    cursor = _tick(pipeline, server)

    assert len(smtp_inbox.messages) == 2
    (engineering,) = smtp_inbox.to("data-eng@example.com")
    assert smtp_inbox.to("oncall@example.com") == [engineering]
    assert engineering["Subject"] == (
        "[WARN] Check failed: assignar_timesheets quarantine_empty (demo)"
    )
    body = engineering.get_content()
    link = f"{UI}/assets/assignar_timesheets?view=checks&checkDetail=quarantine_empty"
    assert link in body
    assert "demo: failing (1)" in body and "  - quarantined: " in body
    first, end = LAST_4_WEEKS
    assert f"Partition or window: {first}..{end - timedelta(days=1)}" in body
    (payroll,) = smtp_inbox.to("payroll@example.com")
    assert payroll["Subject"] == engineering["Subject"] and link in payroll.get_content()
    (hook_alert,) = _texts(engineers)
    assert hook_alert["text"].startswith("*[WARN] Check failed:")
    assert hook_alert["alert"]["connections"][0]["connection"] == "demo"
    assert hook_alert["alert"]["url"] == link
    (team_alert,) = _texts(team)
    assert team_alert["alert"]["audience"] == "demo"

    assert _tick(pipeline, server, cursor) == cursor  # nothing new: nothing sent
    _malformed_record(pipeline)
    assert pipeline.materialize(["assignar_timesheets"]).success
    cursor = _tick(pipeline, server, cursor)
    _tick(pipeline, server, None)  # a lost cursor: the current state is known already
    assert len(smtp_inbox.messages) == 2 and len(engineers.received) == 1

    assert pipeline.materialize(["assignar_timesheets"]).success  # fixed upstream
    _tick(pipeline, server, cursor)

    assert len(smtp_inbox.messages) == 4
    recovered = smtp_inbox.to("data-eng@example.com")[-1]
    assert recovered["Subject"] == (
        "[OK] Check passes again: assignar_timesheets quarantine_empty (demo)"
    )
    assert "demo: passing (failing since " in recovered.get_content()
    assert smtp_inbox.to("payroll@example.com")[-1]["Subject"] == recovered["Subject"]
    assert [p["alert"]["event"] for p in _texts(engineers)] == ["failed", "recovered"]
    assert [p["alert"]["event"] for p in _texts(team)] == ["failed", "recovered"]


def _settings_run(pipeline, frequency: str) -> dg.ExecuteInProcessResult:
    return defs.get_job_def("update_sync_settings").execute_in_process(
        instance=pipeline.instance,
        run_config={"ops": {"change_sync_settings": {"config": {"key": "demo",
                                                                "frequency": frequency}}}},
        resources={"pay": PayDatabaseResource(url=pipeline.url)},
        raise_on_error=False,
    )  # fmt: skip


def _on_run(sensor, pipeline, result, server) -> None:
    """Evaluate a run-status sensor on `result`'s run, as the daemon would after it ended."""
    run = pipeline.instance.get_run_by_id(result.run_id)
    kind = "PIPELINE_FAILURE" if sensor is notify_on_failure else "PIPELINE_SUCCESS"
    event = next(e for e in result.all_events if e.event_type_value == kind)
    with dg.build_run_status_sensor_context(
        sensor_name=sensor.name,
        dagster_event=event,
        dagster_instance=pipeline.instance,
        dagster_run=run,
        resources=_resources(pipeline, server),
    ) as context:
        sensor(context.for_run_failure() if kind == "PIPELINE_FAILURE" else context)


@pytest.mark.parametrize("pay_engine", ["sqlite"], indirect=True)
def test_a_failing_job_reaches_the_data_engineers_once_and_its_recovery_once(
    pipeline, inbox, hooks
):
    """A job that is not a sync (the settings job, refused) fails twice: the data engineers
    hear it once, with the refusal and the run's link; its next success is told once."""
    smtp_inbox, server = inbox
    engineers, _ = hooks
    first = _settings_run(pipeline, "fortnightly")
    assert not first.success
    _on_run(notify_on_failure, pipeline, first, server)
    again = _settings_run(pipeline, "fortnightly")
    _on_run(notify_on_failure, pipeline, again, server)

    (message,) = smtp_inbox.to("data-eng@example.com")
    assert message["Subject"] == "[ERROR] Run failed: job update_sync_settings (deployment)"
    body = message.get_content()
    assert "Unknown sync frequency 'fortnightly'" in body
    assert f"{UI}/runs/{first.run_id}" in body
    assert len(engineers.received) == 1

    fixed = _settings_run(pipeline, "daily")
    assert fixed.success
    _on_run(notify_on_success, pipeline, fixed, server)
    _on_run(notify_on_success, pipeline, _settings_run(pipeline, "daily"), server)

    assert [m["Subject"] for m in smtp_inbox.to("data-eng@example.com")] == [
        "[ERROR] Run failed: job update_sync_settings (deployment)",
        "[OK] Job succeeds again: job update_sync_settings (deployment)",
    ]


@pytest.mark.parametrize("pay_engine", ["sqlite"], indirect=True)
def test_a_sync_failing_for_one_connection_is_told_for_that_connection(
    pipeline, inbox, hooks, monkeypatch
):
    """A revoked secret fails the sync for `second` in every run: the data engineers hear once
    that the sync fails for `second` (never for demo, which synced), with Assignar's reason."""
    smtp_inbox, server = inbox
    monkeypatch.setenv("SECOND_SECRET", "revoked-secret-5521")
    add_connection(pipeline.engine, "second", client_secret_ref="SECOND_SECRET")
    for _ in range(2):
        result = run_sync(pipeline, ["demo", "second"])
        assert not result.success
        _on_run(notify_on_failure, pipeline, result, server)

    (message,) = smtp_inbox.to("data-eng@example.com")
    assert message["Subject"] == "[ERROR] Run failed: job sync_assignar (second)"
    body = message.get_content()
    assert "second: failing" in body and "rejected the client id" in body
    assert "demo:" not in body
    assert "revoked-secret-5521" not in message.as_string()
    with pipeline.engine.connect() as conn:
        states = dict(
            conn.execute(
                sa.select(t.alert_state.c.subject, t.alert_state.c.state).where(
                    t.alert_state.c.source == "job:sync_assignar"
                )
            ).all()
        )
    assert states == {"demo": "passing", "second": "failing"}


def test_the_check_cursor_reads_the_earlier_form_and_keeps_what_waits():
    """A cursor written before evaluations could wait is read as it was meant; one with a
    waiting evaluation keeps it, and drops the waiting part once nothing waits."""
    earlier = CheckCursor.parse('{"a:check": 7}')
    assert earlier.after == {"a:check": 7} and earlier.waiting == {}
    assert earlier.dumps() == '{"a:check": 7}'
    earlier.waiting["a:check"] = [9]
    again = CheckCursor.parse(earlier.dumps())
    assert again.after == {"a:check": 7} and again.waiting == {"a:check": [9]}
    again.waiting["a:check"] = []
    assert again.dumps() == '{"a:check": 7}'


@pytest.mark.parametrize("pay_engine", ["sqlite"], indirect=True)
def test_a_check_evaluated_after_the_tick_that_saw_it_planned_is_told_once(pipeline, inbox, hooks):
    """A tick during the run sees the check only planned and tells nothing; the next tick, after
    the run has evaluated it (in place of the planned record), tells its failure once; a third
    tells nothing more."""
    smtp_inbox, server = inbox
    httpx.post(
        f"{pipeline.simulator.base_url}/_simulator/faults",
        json={"kind": "slow", "delay": 4, "count": 1, "path": "/v2/projects"},
    ).raise_for_status()
    results: list[dg.ExecuteInProcessResult] = []
    run = threading.Thread(
        target=lambda: results.append(pipeline.materialize(["assignar_projects", "pay_projects"]))
    )
    run.start()
    try:
        key = dg.AssetCheckKey(dg.AssetKey("pay_projects"), "no_open_conflicts")
        storage = pipeline.instance.event_log_storage
        deadline = time.monotonic() + 60
        while not storage.get_asset_check_execution_history(key, limit=1):
            assert time.monotonic() < deadline, "the run never planned its check"
            time.sleep(0.1)
        cursor = _tick(pipeline, server)
        assert run.is_alive(), "the run ended before the tick: the check was not seen planned"
        assert smtp_inbox.messages == []
        assert "waiting" in json.loads(cursor)
    finally:
        run.join()
    assert results and results[0].success
    assert len(storage.get_asset_check_execution_history(key, limit=10)) == 1  # in place

    cursor = _tick(pipeline, server, cursor)
    subjects = [m["Subject"] for m in smtp_inbox.to("data-eng@example.com")]
    assert subjects == ["[WARN] Check failed: pay_projects no_open_conflicts (demo)"]
    assert "waiting" not in json.loads(cursor)
    assert _tick(pipeline, server, cursor) == cursor
    assert len(smtp_inbox.to("data-eng@example.com")) == 1

"""Notifications: run-status sensors evaluated on real runs send email through a real SMTP server
on loopback (aiosmtpd, with STARTTLS and AUTH) and POST webhooks; each team hears only about its
own connection, once, and no secret travels."""

from __future__ import annotations

import json
from datetime import timedelta

import dagster as dg
import pytest
import sqlalchemy as sa

from assignar_pipeline.definitions import defs
from assignar_pipeline.pay import tables as t
from assignar_pipeline.status import connection_status
from assignar_pipeline.sync_settings import SettingsChange, change_settings
from resources import AssignarResource, PayDatabaseResource, SyncScope
from sensors.notifications import notify_on_failure, notify_on_success
from tests.support.notify import (
    Inbox,
    WebhookReceiver,
    notify_resource,
    self_signed_certificate,
    smtp_server,
)
from tests.support.pay import cells_containing
from tests.support.pipeline import LAST_4_WEEKS, TODAY, make_pipeline
from tests.support.sync import add_connection, run_sync

pytestmark = pytest.mark.parametrize("pay_engine", ["sqlite"], indirect=True)

SMTP_PASSWORD = "smtp-pass-Zq81"  # what the server accepts; must never be stored or sent


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
def tls_inbox(tmp_path, monkeypatch):
    """STARTTLS required, AUTH required; the client trusts the test certificate only."""
    cert, key = self_signed_certificate(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    inbox = Inbox()
    server = smtp_server(inbox, tls=(cert, key), user="pipeline", password=SMTP_PASSWORD)
    server.start()
    yield inbox, server
    server.stop()


def _evaluate(sensor, pipeline, result, event_type: str, **resources) -> None:
    """Evaluate a run-status sensor on `result`'s run, as the daemon would after it ended."""
    run = pipeline.instance.get_run_by_id(result.run_id)
    event = next(e for e in result.all_events if e.event_type_value == event_type)
    with dg.build_run_status_sensor_context(
        sensor_name=sensor.name,
        dagster_event=event,
        dagster_instance=pipeline.instance,
        dagster_run=run,
        resources=resources,
    ) as context:
        sensor(context.for_run_failure() if event_type == "PIPELINE_FAILURE" else context)


def _on_failure(pipeline, result, **resources) -> None:
    _evaluate(notify_on_failure, pipeline, result, "PIPELINE_FAILURE", **resources)


def _on_success(pipeline, result, **resources) -> None:
    _evaluate(notify_on_success, pipeline, result, "PIPELINE_SUCCESS", **resources)


def test_a_failed_sync_tells_only_the_team_whose_connection_failed(pipeline, inbox, monkeypatch):
    """A sync run over two connections fails for one (rotated secret): that team alone gets an
    email and a webhook with the actionable message; the other team hears nothing; a second
    evaluation of the sensor sends nothing again."""
    smtp_inbox, server = inbox
    monkeypatch.setenv("SECOND_SECRET", "rotated-away-9931")
    add_connection(pipeline.engine, "second", client_secret_ref="SECOND_SECRET")
    change_settings(pipeline.engine, "demo", SettingsChange(notify_emails="demo-pay@example.com"))
    with WebhookReceiver() as hook:
        change_settings(
            pipeline.engine,
            "second",
            SettingsChange(notify_emails="second-pay@example.com, ops@example.com",
                           webhook_url=hook.url),
        )  # fmt: skip
        result = run_sync(pipeline, ["demo", "second"])
        assert not result.success
        resources = {
            "pay": PayDatabaseResource(url=pipeline.url),
            "notify": notify_resource(server),
        }
        _on_failure(pipeline, result, **resources)
        _on_failure(pipeline, result, **resources)

    assert len(smtp_inbox.messages) == 1
    recipients, message = smtp_inbox.messages[0]
    assert sorted(recipients) == ["ops@example.com", "second-pay@example.com"]
    assert "second" in message["Subject"] and "sync failed" in message["Subject"]
    body = message.get_content()
    assert "rejected the client id" in body and "Settings → API" in body
    assert f"/runs/{result.run_id}" in body
    assert not smtp_inbox.to("demo-pay@example.com")
    assert "rotated-away-9931" not in message.as_string()
    assert len(hook.received) == 1
    payload = json.loads(hook.received[0][1])
    assert payload["connection"] == "second" and payload["event"] == "sync_failed"
    assert "rejected the client id" in payload["error"]
    with pipeline.engine.connect() as conn:
        run = conn.execute(sa.select(t.sync_run).where(t.sync_run.c.run_id == result.run_id)).one()
    assert (run.kind, run.status) == ("sync", "failure")


def _import_result(pipeline, operation: str = "initial_import") -> dg.ExecuteInProcessResult:
    assets = list(defs.assets)
    return dg.materialize(
        assets,
        instance=pipeline.instance,
        tags={
            "dagster/asset_partition_range_start": LAST_4_WEEKS[0].isoformat(),
            "dagster/asset_partition_range_end": (LAST_4_WEEKS[1] - timedelta(days=1)).isoformat(),
            "assignar/operation": operation,
        },
        resources={
            "assignar": AssignarResource(),
            "pay": PayDatabaseResource(url=pipeline.url),
            "scope": SyncScope(connections=["demo"]),
        },
    )


def test_a_finished_import_emails_its_counts_over_starttls_with_auth(
    pipeline, tls_inbox, monkeypatch
):
    """An initial import that succeeded is emailed to its team through STARTTLS and AUTH, the
    credentials read from the environment, with the counts per step; the password is in no
    table, log or message."""
    smtp_inbox, server = tls_inbox
    monkeypatch.setenv("SMTP_USERNAME", "pipeline")
    monkeypatch.setenv("SMTP_PASSWORD", SMTP_PASSWORD)
    change_settings(pipeline.engine, "demo", SettingsChange(notify_emails="payroll@example.com"))
    result = _import_result(pipeline)
    assert result.success
    resources = {
        "pay": PayDatabaseResource(url=pipeline.url),
        "notify": notify_resource(server, starttls=True),
    }

    _on_success(pipeline, result, **resources)

    assert smtp_inbox.logins == ["pipeline"]
    (message,) = smtp_inbox.to("payroll@example.com")
    assert "initial import finished" in message["Subject"]
    body = message.get_content()
    assert "timesheets" in body and "pay_timesheets" in body
    with pipeline.engine.connect() as conn:
        fetched = conn.execute(
            sa.select(sa.func.sum(t.sync_log.c.fetched)).where(
                t.sync_log.c.run_id == result.run_id, t.sync_log.c.entity == "timesheets"
            )
        ).scalar()
    # The window as everywhere: first..last date, both included.
    assert f"timesheets {LAST_4_WEEKS[0]}..{TODAY}: {fetched} /" in body
    assert SMTP_PASSWORD not in message.as_string()
    assert cells_containing(pipeline.engine, SMTP_PASSWORD) == []
    logs = " ".join(str(e) for e in pipeline.instance.all_logs(result.run_id))
    assert SMTP_PASSWORD not in logs


def test_a_wrong_smtp_password_is_recorded_without_the_password(pipeline, tls_inbox, monkeypatch):
    """The SMTP server refuses the login: nothing is sent, the notification row says which
    variables to check and never what they hold."""
    smtp_inbox, server = tls_inbox
    monkeypatch.setenv("SMTP_USERNAME", "pipeline")
    monkeypatch.setenv("SMTP_PASSWORD", "not-the-password-7")
    change_settings(pipeline.engine, "demo", SettingsChange(notify_emails="payroll@example.com"))
    result = _import_result(pipeline)
    resources = {
        "pay": PayDatabaseResource(url=pipeline.url),
        "notify": notify_resource(server, starttls=True),
    }

    _on_success(pipeline, result, **resources)

    assert smtp_inbox.messages == []
    with pipeline.engine.connect() as conn:
        (error,) = conn.execute(sa.select(t.notification.c.error)).scalars().all()
    assert "SMTP_USERNAME" in error and "SMTP_PASSWORD" in error
    assert cells_containing(pipeline.engine, "not-the-password-7") == []


def test_a_failed_run_is_explained_in_the_sync_log_for_each_connection(pipeline, inbox):
    """A run that fails before any connection could log (unknown connection in run config) gets
    a `run` row per connection it covered, with the failure's message."""
    _, server = inbox
    result = run_sync(pipeline, ["demo", "no-such-team"])
    assert not result.success
    resources = {"pay": PayDatabaseResource(url=pipeline.url), "notify": notify_resource(server)}

    _on_failure(pipeline, result, **resources)

    with pipeline.engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.sync_log.c.entity, t.sync_log.c.error).where(
                t.sync_log.c.run_id == result.run_id
            )
        ).all()
    assert [r.entity for r in rows] == ["run"]
    assert "unknown connection key(s): 'no-such-team'" in rows[0].error


def _run_refused(pipeline, job: str, op: str, config: dict) -> dg.ExecuteInProcessResult:
    return defs.get_job_def(job).execute_in_process(
        instance=pipeline.instance,
        resources={"pay": PayDatabaseResource(url=pipeline.url)},
        run_config={"ops": {op: {"config": config}}},
        raise_on_error=False,
    )


@pytest.mark.parametrize(
    ("job", "op", "config"),
    [
        (
            "connect_assignar",
            "connect_pay_team",
            {"key": "new-eu", "team_id": 1, "user_email": "priya.raman@example.com",
             "region": "eu", "client_id": "demo-client", "client_secret_ref": "NOPE_SECRET",
             "timezone": "Europe/London"},
        ),
        (
            "resolve_conflicts",
            "resolve_conflicts_op",
            {"decided_by": "priya.raman@example.com",
             "resolutions": [{"conflict": "00000000", "choice": "map", "target": 999999}]},
        ),
    ],
)  # fmt: skip
def test_a_refused_job_that_concerns_no_connection_changes_no_connection(
    pipeline, inbox, job, op, config
):
    """A refused connect or resolve writes no sync-log row and leaves `demo` as it was."""
    _, server = inbox
    pipeline.materialize(["assignar_projects"])
    with pipeline.engine.connect() as conn:
        before = connection_status(conn, pipeline.connection_id("demo")).state
        rows_before = conn.execute(sa.select(sa.func.count()).select_from(t.sync_log)).scalar()
    result = _run_refused(pipeline, job, op, config)
    assert not result.success
    resources = {"pay": PayDatabaseResource(url=pipeline.url), "notify": notify_resource(server)}

    _on_failure(pipeline, result, **resources)

    with pipeline.engine.connect() as conn:
        assert connection_status(conn, pipeline.connection_id("demo")).state == before
        assert conn.execute(sa.select(sa.func.count()).select_from(t.sync_log)).scalar() == (
            rows_before
        )
        assert (
            conn.execute(
                sa.select(t.sync_run.c.status).where(t.sync_run.c.run_id == result.run_id)
            ).scalar_one()
            == "failure"
        )

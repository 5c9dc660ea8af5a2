"""Settings, sync log and status as an operator sees them: `assignar-pipeline settings`,
`sync-log` and `status`, the settings job in Dagster, and the sync job's status metadata."""

from __future__ import annotations

import json

import dagster as dg
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from assignar_pipeline.cli import main
from assignar_pipeline.definitions import defs
from assignar_pipeline.pay import tables as t
from assignar_pipeline.sync_settings import read_settings
from resources import PayDatabaseResource
from tests.support.pipeline import LAST_4_WEEKS, TODAY, make_pipeline
from tests.support.sync import add_connection, run_sync

pytestmark = pytest.mark.parametrize("pay_engine", ["sqlite"], indirect=True)


@pytest.fixture
def instance(tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        yield instance


@pytest.fixture
def pipeline(pay_engine, simulator, instance, monkeypatch):
    pipeline = make_pipeline(pay_engine, simulator, instance, monkeypatch)
    monkeypatch.setenv("PAY_DATABASE_URL", pipeline.url)
    return pipeline


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_settings_command_changes_a_connection_and_refuses_what_cannot_work(pipeline):
    """`settings` stores frequency, time, weekday, recipients and batch size and shows them;
    orders without job costing and an unknown weekday are refused with what to fix."""
    code, out = _cli(
        "settings", "--key", "demo", "--frequency", "weekly", "--time", "6:30",
        "--weekday", "fri", "--notify", "pay@example.com, boss@example.com", "--batch-size", "25",
    )  # fmt: skip
    assert code == 0, out
    assert "demo: weekly on Fri at 06:30 Australia/Sydney; syncs timesheets, orders" in out
    assert "2 recipient(s)" in out and "Batch size: 25" in out
    with pipeline.engine.begin() as conn:
        conn.execute(
            t.team_feature.update()
            .where(t.team_feature.c.feature == "job_costing")
            .values(enabled=False)
        )
    code, out = _cli("settings", "--key", "demo", "--orders", "on")
    assert code == 1 and "needs job costing" in out
    code, out = _cli("settings", "--key", "demo", "--weekday", "someday")
    assert code == 1 and "mon..sun" in out
    with pipeline.engine.connect() as conn:
        (settings,) = read_settings(conn, keys=["demo"])
    assert (settings.frequency, settings.time, settings.weekday) == ("weekly", "06:30", 5)
    assert settings.entities == ("timesheets",), "a team without job costing stops syncing orders"


def test_the_settings_job_applies_and_refuses_like_the_command(pipeline):
    """The Launchpad job changes the same settings; a bad value fails the run with the reason."""
    job = defs.get_job_def("update_sync_settings")
    resources = {"pay": PayDatabaseResource(url=pipeline.url)}

    def run(**config) -> dg.ExecuteInProcessResult:
        return job.execute_in_process(
            run_config={"ops": {"change_sync_settings": {"config": config}}},
            resources=resources,
            instance=pipeline.instance,
            raise_on_error=False,
        )

    assert run(key="demo", frequency="daily", time="05:00", lookback_days=7).success
    failed = run(key="demo", lookback_days=90)
    assert not failed.success
    failure = next(e for e in failed.all_events if e.event_type_value == "STEP_FAILURE")
    assert "Lookback must be 0 to 31 days" in str(failure.event_specific_data)
    with pipeline.engine.connect() as conn:
        (settings,) = read_settings(conn, keys=["demo"])
    assert (settings.frequency, settings.time, settings.lookback_days) == ("daily", "05:00", 7)


def test_sync_log_and_status_explain_a_good_and_a_failed_connection(pipeline, monkeypatch):
    """After a sync where one connection's secret was rotated and another's variable is unset:
    `sync-log` shows each connection's rows with the run's kind, the window (last date included)
    and the error, and refuses an unknown key; `status` says
    Error with that message for each, and for the good one its last sync and next due sync; the
    run's metadata carries the same status. Before that, `status` tells records fetched from
    Assignar apart from rows added to Pay, per entity."""
    assert pipeline.materialize().success
    with pipeline.engine.connect() as conn:
        log = {r.entity: r for r in conn.execute(sa.select(t.sync_log))}  # one run: one row each
    fetched = sum(log[e].fetched for e in ("projects", "workers", "timesheets", "orders"))
    fetched += log["pay_rates"].fetched
    added = sum(log[e].inserted for e in ("pay_projects", "pay_workers", "pay_timesheets"))
    added += log["pay_orders"].inserted
    code, out = _cli("status")
    assert f"from Assignar: {fetched} records ({log['projects'].fetched} projects, " in out
    assert f"into Pay: {added} added or linked ({log['pay_projects'].inserted} projects, " in out
    assert (
        f"{log['pay_workers'].inserted} employees, {log['pay_timesheets'].inserted} timesheets"
        in out
    )
    assert "inserted" not in out, "staging and Pay rows are not summed as one count"
    monkeypatch.setenv("BROKEN_SECRET", "rotated")
    add_connection(pipeline.engine, "broken", client_secret_ref="BROKEN_SECRET")
    add_connection(pipeline.engine, "unset", client_secret_ref="NEVER_SET_ANYWHERE")
    result = run_sync(pipeline, ["demo", "broken", "unset"])
    assert not result.success

    code, out = _cli("sync-log", "--run", result.run_id[:8])
    assert code == 0, out
    lines = out.splitlines()
    assert any(" sync " in line and " demo " in line and " timesheets " in line for line in lines)
    assert any(" broken " in line and "rejected the client id" in line for line in lines)
    code, out = _cli("sync-log", "--key", "broken", "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert rows and all(r["connection"] == "broken" for r in rows)
    assert rows[0]["kind"] == "sync" and "rejected the client id" in rows[0]["error"]
    code, out = _cli("sync-log", "--key", "demo", "--json")
    windows = {r["window"] for r in map(json.loads, out.splitlines()) if r["kind"] == "manual"}
    assert windows == {None, f"{LAST_4_WEEKS[0]}..{TODAY}"}, "the last date is included"
    code, out = _cli("sync-log", "--key", "demo")
    assert f" {LAST_4_WEEKS[0]}..{TODAY} " in out
    code, out = _cli("sync-log", "--key", "demo", "--key", "nope")
    assert code == 1 and "No connection has the key 'nope'. Known keys: broken, demo, unset." in out

    code, out = _cli("status", "--connection", "nope")
    assert code == 1 and "No connection has the key 'nope'. Known keys: broken, demo, unset." in out
    code, out = _cli("status")
    assert code == 0, out
    broken = out[out.index("broken:") : out.index("demo:")]
    demo = out[out.index("demo:") : out.index("unset:")]
    unset = out[out.index("unset:") :]
    assert "Error" in unset and "NEVER_SET_ANYWHERE" in unset and "is not set" in unset
    assert "Error" in broken and "rejected the client id" in broken
    assert "last sync:" in demo and "(sync)" in demo
    assert "next due sync:" in demo and "UTC (hourly Australia/Sydney" in demo
    assert "Error" not in demo.splitlines()[0]

    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    shown = failure.event_specific_data.user_failure_data.metadata["status"].value
    assert "| broken | Error |" in shown
    assert "| demo | " in shown and "next_due_sync" in shown
    with pipeline.engine.connect() as conn:
        kinds = dict(conn.execute(sa.select(t.sync_run.c.run_id, t.sync_run.c.kind)).all())
    assert kinds[result.run_id] == "sync"
    assert set(kinds.values()) == {"sync", "manual"}, "the materialization was a manual run"

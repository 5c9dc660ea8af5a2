"""The whole pipeline: Dagster runs on a real instance, the simulator over HTTP, Pay on SQLite
and PostgreSQL."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta

import dagster as dg
import httpx
import pytest
import sqlalchemy as sa

from assignar_pipeline.load import APPROVED_STATUSES
from assignar_pipeline.pay import tables as t
from tests.support.pipeline import (
    LAST_4_WEEKS,
    add_team,
    assert_pay_matches_assignar,
    make_pipeline,
    materialize_in_process,
    pay_timesheets,
    simulator_timesheets,
)


@pytest.fixture
def instance(tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        yield instance


@pytest.fixture
def pipeline(pay_engine, simulator, instance, monkeypatch):
    return make_pipeline(pay_engine, simulator, instance, monkeypatch)


def _connection_id(pipeline, key: str) -> int:
    with pipeline.engine.connect() as conn:
        return conn.execute(sa.select(t.connection.c.id).where(t.connection.c.key == key)).scalar()


def test_last_four_weeks_load_and_a_rerun_changes_nothing(pipeline):
    """A 28-day ranged run fills Pay exactly as Assignar says; running it again is a no-op."""
    result = pipeline.materialize()
    assert result.success
    demo = _connection_id(pipeline, "demo")
    assert_pay_matches_assignar(pipeline, demo, LAST_4_WEEKS)
    assert pipeline.count(t.timesheet) > 100, "the demo window should load many timesheets"
    assert pipeline.count(t.sync_hold, t.sync_hold.c.entity == "timesheet") > 0
    before = pipeline.checksums()
    assert pipeline.materialize().success
    assert pipeline.checksums() == before


def test_edits_approvals_and_deletions_upstream_are_reflected(pipeline):
    """Edit, approve and delete in Assignar; the next run shows exactly that in Pay."""
    assert pipeline.materialize().success
    demo = _connection_id(pipeline, "demo")
    loaded = pay_timesheets(pipeline.engine, demo)
    truth = simulator_timesheets(pipeline.simulator, LAST_4_WEEKS)
    live = [i for i, row in loaded.items() if row.status != "void"]
    edited, deleted = live[0], live[1]
    unapproved = next(
        i for i, r in truth.items() if r["status"] not in APPROVED_STATUSES and i not in loaded
    )
    sim = pipeline.simulator.simulator
    sim.update("timesheets-expanded", edited, {"total_time": "01:15"})
    sim.update("timesheets-expanded", unapproved, {"status": "APPROVED"})
    sim.delete("timesheets-expanded", deleted)

    assert pipeline.materialize(["assignar_timesheets", "pay_timesheets"]).success
    after = pay_timesheets(pipeline.engine, demo)
    assert after[edited].payable_minutes == 75
    assert after[edited].source_version == 2
    assert after[deleted].status == "void"
    assert after[deleted].void_reason == "deleted in Assignar"
    held = pipeline.count(
        t.sync_hold, t.sync_hold.c.assignar_id == unapproved, t.sync_hold.c.entity == "timesheet"
    )
    assert unapproved in after or held == 1, (
        "the newly approved timesheet is neither loaded nor held"
    )
    assert_pay_matches_assignar(pipeline, demo, LAST_4_WEEKS)


def test_malformed_record_is_quarantined_and_the_rest_of_its_page_loads(pipeline):
    """A record with wrong types goes to quarantine with its reason, which the WARN check names
    (connection, record, worker, day); its page-mates load; once fixed upstream it leaves."""
    assert pipeline.materialize(["assignar_workers"]).success  # the check names the worker
    httpx.post(
        f"{pipeline.simulator.base_url}/_simulator/faults",
        json={"kind": "malformed_record", "count": 1, "path": "/v2/timesheets-expanded"},
    ).raise_for_status()
    result = pipeline.materialize(["assignar_timesheets"])
    assert result.success
    with pipeline.engine.connect() as conn:
        quarantined = conn.execute(sa.select(t.quarantine)).all()
    assert len(quarantined) == 1
    assert quarantined[0].reason
    check = next(
        e for e in result.get_asset_check_evaluations() if e.check_name == "quarantine_empty"
    )
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    bad = quarantined[0]
    with pipeline.engine.connect() as conn:
        worker = conn.execute(
            sa.select(t.staging_worker).where(
                t.staging_worker.c.assignar_id == bad.record["user_id"]
            )
        ).one()
    headline, line = check.description.splitlines()
    assert headline.startswith("1 timesheet in quarantine (demo 1): fix them in Assignar")
    assert line == (
        f"- demo: timesheet {bad.assignar_id} of {worker.first_name} {worker.last_name} on "
        f"{bad.work_date}: {bad.reason}"
    )
    demo = _connection_id(pipeline, "demo")
    truth = simulator_timesheets(pipeline.simulator, LAST_4_WEEKS)
    staged = pipeline.count(t.staging_timesheet, t.staging_timesheet.c.connection_id == demo)
    assert staged == len(truth) - 1

    assert pipeline.materialize(["assignar_timesheets"]).success
    assert pipeline.count(t.quarantine, t.quarantine.c.released_at.is_(None)) == 0
    assert pipeline.count(t.staging_timesheet) == len(truth)


def test_connections_with_overlapping_ids_never_share_a_row(pipeline, monkeypatch):
    """Two teams importing accounts whose Assignar ids coincide each get their own rows."""
    monkeypatch.setenv("SECOND_SECRET", "demo-secret-change-me")
    pipeline.connect("second", "SECOND_SECRET", team_id=add_team(pipeline.engine, "Second"))
    assert pipeline.materialize().success
    first, second = _connection_id(pipeline, "demo"), _connection_id(pipeline, "second")
    a, b = pay_timesheets(pipeline.engine, first), pay_timesheets(pipeline.engine, second)
    assert a and b and set(a) & set(b), "the two accounts should share Assignar ids"
    assert not {row.id for row in a.values()} & {row.id for row in b.values()}
    teams = {row.source_connection_id: row.team_id for row in [*a.values(), *b.values()]}
    assert teams[first] != teams[second]
    with pipeline.engine.connect() as conn:
        crossed = conn.execute(
            sa.select(sa.func.count())
            .select_from(t.timesheet.join(t.employee, t.employee.c.id == t.timesheet.c.employee_id))
            .where(t.employee.c.team_id != t.timesheet.c.team_id)
        ).scalar()
    assert crossed == 0


def test_connection_with_bad_credentials_fails_alone(pipeline, monkeypatch):
    """One connection's rejected secret fails the run, naming it, while the other loads."""
    monkeypatch.setenv("SECOND_SECRET", "demo-secret-change-me")
    pipeline.connect("second", "SECOND_SECRET", team_id=add_team(pipeline.engine, "Second"))
    monkeypatch.setenv("SECOND_SECRET", "rotated-away")
    result = pipeline.materialize()
    assert not result.success
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failures and all("second" in e.message or "second" in str(e.event_specific_data)
                            for e in failures)  # fmt: skip
    assert "rotated-away" not in " ".join(str(e) for e in result.all_events)
    demo = _connection_id(pipeline, "demo")
    assert_pay_matches_assignar(pipeline, demo, LAST_4_WEEKS)
    assert pay_timesheets(pipeline.engine, demo)
    second = _connection_id(pipeline, "second")
    assert pay_timesheets(pipeline.engine, second) == {}
    with pipeline.engine.connect() as conn:
        errors = (
            conn.execute(
                sa.select(t.sync_log.c.error).where(
                    t.sync_log.c.connection_id == second, t.sync_log.c.error.is_not(None)
                )
            )
            .scalars()
            .all()
        )
    assert errors and "rejected the client id" in errors[0]


def test_overlapping_runs_of_one_window_end_as_one_run(pipeline):
    """Two runs of the same window in two processes at once leave no duplicate and the state
    one run leaves."""
    env = {
        name: os.environ[name] for name in ("ASSIGNAR_API_URL", "ASSIGNAR_TOKEN_URL", "DEMO_SECRET")
    }
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=context) as pool:
        runs = [pool.submit(materialize_in_process, env, pipeline.url, LAST_4_WEEKS) for _ in "ab"]
        outcomes = [run.result(timeout=240) for run in runs]
    assert outcomes == [True, True]
    demo = _connection_id(pipeline, "demo")
    assert_pay_matches_assignar(pipeline, demo, LAST_4_WEEKS)
    with pipeline.engine.connect() as conn:
        duplicates = conn.execute(
            sa.select(t.timesheet.c.source_external_id)
            .group_by(t.timesheet.c.source_connection_id, t.timesheet.c.source_external_id)
            .having(sa.func.count() > 1)
        ).all()
    assert duplicates == []
    settled = pipeline.checksums()
    assert pipeline.materialize().success
    assert pipeline.checksums() == settled


@pytest.mark.parametrize("pay_engine", ["sqlite"], indirect=True)
def test_a_ranged_run_reports_each_date_piece_as_it_finishes(pipeline):
    """Each week of a 4-week run is materialized when its piece is done, before the run ends;
    a one-day run reports only its own materialization."""
    result = pipeline.materialize(["assignar_timesheets", "pay_timesheets"])

    assert result.success
    events = [e.event_type_value for e in result.all_events]
    dates = {(LAST_4_WEEKS[0] + timedelta(days=i)).isoformat() for i in range(28)}
    for asset in ("assignar_timesheets", "pay_timesheets"):
        progress = [
            (i, e.event_specific_data.materialization.partition)
            for i, e in enumerate(result.all_events)
            if e.event_type_value == "ASSET_MATERIALIZATION"
            and e.asset_key == dg.AssetKey(asset)
            and (e.event_specific_data.materialization.description or "").startswith("Date piece")
        ]
        assert {partition for _, partition in progress} == dates
        step_done = events.index("STEP_SUCCESS", 0 if asset.startswith("assignar") else
                                 events.index("STEP_SUCCESS") + 1)  # fmt: skip
        assert max(i for i, _ in progress) < step_done
    one_day = pipeline.materialize(
        ["assignar_timesheets"], (LAST_4_WEEKS[0], LAST_4_WEEKS[0] + timedelta(days=1))
    )
    assert [e.event_specific_data.materialization.description
            for e in one_day.get_asset_materialization_events()] == [None]  # fmt: skip

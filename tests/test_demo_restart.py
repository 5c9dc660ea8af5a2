"""`make run` restarted: the simulator resumes from its state file while Pay's database is kept,
so an edit made through the simulator's control plane survives and the first sync after the
restart finds nothing to change. Real simulator over HTTP, real Dagster instance, Pay on SQLite."""

from __future__ import annotations

import dagster as dg
import httpx
import pytest

from assignar_pipeline.simulator import SimulatorServer, TenantConfig
from assignar_pipeline.simulator.state import resume
from tests.support.pipeline import LAST_4_WEEKS, assert_pay_matches_assignar, make_pipeline
from tests.support.pipeline import pay_timesheets as pay_rows
from tests.support.sync import connection_id, run_sync

TS = "timesheets-expanded"


@pytest.mark.parametrize("pay_engine", ["sqlite"], indirect=True)
def test_an_edit_survives_a_restart_and_the_next_sync_changes_nothing(
    pay_engine, tmp_path, monkeypatch
):
    """Import, edit a timesheet's hours over HTTP, sync, restart the simulator from its state
    file: Pay and Assignar still agree and a sync changes no Pay, link or staging row."""
    state = tmp_path / "simulator.jsonl"
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        with SimulatorServer(resume(state, TenantConfig())) as server:
            pipeline = make_pipeline(pay_engine, server, instance, monkeypatch)
            assert pipeline.materialize().success
            demo = connection_id(pay_engine, "demo")
            edited = min(i for i, row in pay_rows(pay_engine, demo).items() if row.status != "void")
            resp = httpx.patch(
                f"{server.control_url}/records/{TS}/{edited}", json={"total_time": "01:15"}
            )
            assert resp.status_code == 200, resp.text
            assert run_sync(pipeline, ["demo"]).success
            assert pay_rows(pay_engine, demo)[edited].payable_minutes == 75

        with SimulatorServer(resume(state)) as restarted:  # another port, as after a restart
            monkeypatch.setenv("ASSIGNAR_API_URL", restarted.api_url)
            monkeypatch.setenv("ASSIGNAR_TOKEN_URL", restarted.token_url)
            pipeline.simulator = restarted
            assert restarted.simulator.get(TS, edited)["total_time"] == "01:15"
            assert_pay_matches_assignar(pipeline, demo, LAST_4_WEEKS)
            before = pipeline.checksums()

            result = run_sync(pipeline, ["demo"])

            assert result.success
            assert pipeline.checksums() == before
            assert not result.asset_materializations_for_node("sync_assignar_changes")
            assert_pay_matches_assignar(pipeline, demo, LAST_4_WEEKS)

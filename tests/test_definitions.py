"""The Dagster definitions load, and the test-connection job runs in a real Dagster instance."""

from __future__ import annotations

import dagster as dg

from assignar_pipeline.definitions import defs
from assignar_pipeline.simulator import DEFAULT_CLIENT_ID as DEMO_CLIENT_ID
from resources.assignar import AssignarResource

CONFIG = {
    "ops": {
        "check_assignar_connection": {
            "config": {"client_id": DEMO_CLIENT_ID, "secret_env": "TEST_ASSIGNAR_SECRET"}
        }
    }
}


def test_definitions_load():
    """The code location that `dagster dev -w workspace.yaml` loads is valid."""
    dg.Definitions.validate_loadable(defs)
    assert defs.get_job_def("test_assignar_connection") is not None


def test_connection_job_succeeds_against_the_simulator(simulator, monkeypatch, tmp_path):
    """The Launchpad job checks the connection through the resource, secret from the env."""
    monkeypatch.setenv("ASSIGNAR_API_URL", simulator.api_url)
    monkeypatch.setenv("ASSIGNAR_TOKEN_URL", simulator.token_url)
    monkeypatch.setenv("TEST_ASSIGNAR_SECRET", "demo-secret-change-me")
    job = defs.get_job_def("test_assignar_connection")
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        result = job.execute_in_process(
            instance=instance, resources={"assignar": AssignarResource()}, run_config=CONFIG
        )
        assert result.success
        run = instance.get_run_by_id(result.run_id)
        assert "demo-secret-change-me" not in str(run.run_config)
        logs = [e.message for e in instance.all_logs(result.run_id)]
        assert any("Connection successful" in (m or "") for m in logs)


def test_connection_job_fails_with_the_clear_message(simulator, monkeypatch, tmp_path):
    """A bad secret, or an unset variable, fails the run with the message first (a Failure, no
    traceback of the client beneath it), and the secret is in no event."""
    monkeypatch.setenv("ASSIGNAR_API_URL", simulator.api_url)
    monkeypatch.setenv("ASSIGNAR_TOKEN_URL", simulator.token_url)
    monkeypatch.setenv("TEST_ASSIGNAR_SECRET", "wrong-secret-123456")
    job = defs.get_job_def("test_assignar_connection")
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        result = job.execute_in_process(
            instance=instance,
            resources={"assignar": AssignarResource()},
            run_config=CONFIG,
            raise_on_error=False,
        )
        assert not result.success
        events = " ".join(str(e) for e in instance.all_logs(result.run_id))
        assert "Assignar rejected the client id" in events
        assert "wrong-secret-123456" not in events
        assert _refusal(result).startswith("Connection failed: Assignar rejected the client id")

        monkeypatch.delenv("TEST_ASSIGNAR_SECRET")
        unset = job.execute_in_process(
            instance=instance,
            resources={"assignar": AssignarResource()},
            run_config=CONFIG,
            raise_on_error=False,
        )
        assert _refusal(unset).startswith(
            "Connection failed: Environment variable TEST_ASSIGNAR_SECRET is not set"
        )


def _refusal(result: dg.ExecuteInProcessResult) -> str:
    """What the run view shows first for the failed step: a `dg.Failure`'s description, with no
    chained traceback from our code underneath."""
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    data = failure.event_specific_data
    assert data.error.cls_name == "Failure" and data.error.cause is None, data.error
    return data.user_failure_data.description


def test_workspace_validates_with_the_dagster_cli(tmp_path):
    """`dagster definitions validate -w workspace.yaml` accepts the code location."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [
            Path(sys.executable).with_name("dagster"),
            "definitions",
            "validate",
            "-w",
            "workspace.yaml",
        ],
        cwd=root,
        env={**os.environ, "DAGSTER_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful" in result.stdout + result.stderr


def test_asset_graph_has_groups_kinds_owners_and_descriptions():
    """Every asset says what it is: group, kinds, owner and a description for the UI."""
    specs = {spec.key.path[-1]: spec for a in defs.assets for spec in a.specs}
    assert {k for k, s in specs.items() if s.group_name == "assignar"} == {
        "assignar_projects", "assignar_workers", "assignar_timesheets", "assignar_orders",
        "assignar_pay_rates",
    }  # fmt: skip
    assert {k for k, s in specs.items() if s.group_name == "pay"} == {
        "pay_projects", "pay_employees", "pay_timesheets", "pay_orders",
    }  # fmt: skip
    for name, spec in specs.items():
        assert spec.description and len(spec.description) > 40, name
        assert spec.kinds and spec.owners, name


def test_each_asset_can_run_alone_as_a_backfill_selects_it():
    """A backfill of one dated asset (pay_timesheets without pay_orders) builds a job: no check
    or multi-asset forces its siblings into the selection."""
    job = defs.resolve_implicit_global_asset_job_def()
    for asset in defs.assets:
        for key in asset.keys:
            subset = job.get_subset(asset_selection={key})
            assert key in subset.asset_layer.selected_asset_keys

"""Runs killed with SIGKILL at chosen points, and Pay's PostgreSQL restarted under a run: no Pay
reader ever sees part of a window, and the next run converges to Assignar's truth."""

from __future__ import annotations

import os
import signal

import pytest

from tests.reliability import crash
from tests.reliability.harness import (
    ASSETS,
    PAY_TABLES,
    WINDOW,
    edit_loaded_timesheet,
    edit_upstream,
    fast_assignar,
    pay_checksums,
    run_errors,
    run_logged,
    verdict,
)

ENV = ("ASSIGNAR_API_URL", "ASSIGNAR_TOKEN_URL", "DEMO_SECRET")
#: Each point once, the database alternating (each run is a process of its own: seconds apiece);
#: `make chaos` kills at random points on both.
CASES = [
    pytest.param(("sqlite", "postgresql")[i % 2], point, id=point.name.split(" (")[0])
    for i, point in enumerate(crash.KILL_POINTS)
]


def _converges(pipeline) -> None:
    clean = pipeline.materialize(ASSETS["timesheets"], window=WINDOW, assignar=fast_assignar())
    assert clean.success, run_errors(pipeline.engine, clean.run_id)
    assert run_errors(pipeline.engine, clean.run_id) == {}
    assert {"timesheets", "pay_timesheets"} <= run_logged(pipeline.engine, clean.run_id)
    result = verdict(pipeline, pipeline.connection_id("demo"))
    assert result.clean, result


@pytest.mark.parametrize(("case_pipeline", "point"), CASES, indirect=["case_pipeline"])
def test_sigkill_at_a_point_then_the_next_run_converges(case_pipeline, point):
    """Killed at this point, the run leaves Pay's timesheets as they were or as complete; the next
    run makes Pay equal Assignar."""
    pipeline = case_pipeline
    edit_upstream(pipeline.simulator, "timesheets")
    edit_loaded_timesheet(pipeline)
    before = pay_checksums(pipeline.engine)
    env = {name: os.environ[name] for name in ENV}
    process, _ = crash.start(env, pipeline.url, ASSETS["timesheets"], WINDOW, point)
    process.join(120)
    assert process.exitcode == -signal.SIGKILL, f"the run never reached {point.name}"
    killed = pay_checksums(pipeline.engine)
    _converges(pipeline)
    converged = pay_checksums(pipeline.engine)
    for table in PAY_TABLES["timesheets"]:
        assert killed[table] in (before[table], converged[table]), f"half a window in {table}"


@pytest.mark.parametrize("case_pipeline", ["postgresql"], indirect=True)
def test_postgres_restarted_mid_run_the_step_retries_and_pay_converges(case_pipeline, postgres):
    """PostgreSQL restarts while a run is staging: the step fails on its dead connection, its
    retry policy runs it again, and Pay ends equal to Assignar with nothing half-written."""
    pipeline = case_pipeline
    edit_upstream(pipeline.simulator, "timesheets")
    env = {name: os.environ[name] for name in ENV}
    point = crash.KILL_POINTS[0]
    process, paused = crash.start(env, pipeline.url, ASSETS["timesheets"], WINDOW, point, "pause")
    assert paused.wait(120), "the run never reached the point where the database restarts"
    postgres.restart()
    process.join(180)
    assert process.exitcode == 0
    result = verdict(pipeline, pipeline.connection_id("demo"))
    assert result.clean, result
    _converges(pipeline)

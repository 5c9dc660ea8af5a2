"""Recovery by configuration: which steps Dagster retries, with backoff and jitter, and that the
steps whose failures are refusals or per-connection errors do not retry them."""

from __future__ import annotations

import dagster as dg

from assignar_pipeline.definitions import defs

API_ASSETS = {"assignar_projects", "assignar_workers", "assignar_timesheets", "assignar_orders"}
PAY_ASSETS = {"pay_projects", "pay_employees", "pay_timesheets", "pay_orders"}


def test_assets_and_the_sync_op_retry_with_exponential_backoff_and_jitter():
    """Each extract and Pay asset and the sync op retry a crashed step, backing off with jitter."""
    policies = {
        a.key.path[-1]: a.op.retry_policy
        for a in defs.assets
        if a.key.path[-1] in API_ASSETS | PAY_ASSETS
    }
    sync_op = defs.get_job_def("sync_assignar").graph.node_named("sync_assignar_changes")
    policies["sync_assignar_changes"] = sync_op.definition.retry_policy
    assert set(policies) == API_ASSETS | PAY_ASSETS | {"sync_assignar_changes"}
    for name, policy in policies.items():
        assert policy is not None, f"{name} has no retry policy"
        assert policy.max_retries >= 2 and policy.delay >= 5, name
        assert policy.backoff is dg.Backoff.EXPONENTIAL and policy.jitter is dg.Jitter.PLUS_MINUS


def test_steps_that_launch_runs_or_connect_are_not_retried():
    """Resolving conflicts launches runs and connecting is a person's action: no step retries."""
    for job in ("resolve_conflicts", "connect_assignar", "test_assignar_connection"):
        for node in defs.get_job_def(job).graph.nodes:
            assert node.definition.retry_policy is None, f"{job}.{node.name} would retry"


def test_the_sync_job_has_a_maximum_runtime():
    """A sync whose worker hangs is failed by run monitoring after its max runtime."""
    tags = defs.get_job_def("sync_assignar").tags
    assert 0 < int(tags["dagster/max_runtime"]) <= 3600

"""Assembles the Dagster Definitions from what assets/, resources/, schedules/ and sensors/ export.

The only module of the core that imports Dagster.
"""

import os

import dagster as dg

from assets import ASSET_CHECKS, ASSETS, JOBS
from resources import RESOURCES
from schedules import SCHEDULES
from sensors import SENSORS

#: `PIPELINE_EXECUTOR` where Dagster runs: how a run's steps are executed.
EXECUTORS = ("in_process", "multiprocess", "celery", "k8s")


def executor_from_env() -> dg.ExecutorDefinition:
    """The deployment's executor, the one place that chooses how steps run.

    `in_process` (the default, `make run`): a run's steps run one after another in the run's own
    process. An import's steps depend on each other anyway, and a process per step cost 10–25 s
    of start-up per step on 2 busy cores against 1–10 s of work (bench/RESULTS.md).
    `multiprocess`: Dagster's process per step. `celery`: Celery workers (deploy/), broker and
    result backend from DAGSTER_CELERY_BROKER_URL and DAGSTER_CELERY_BACKEND_URL, as in
    deploy/celery.yaml. `k8s`: one Kubernetes job per step (Helm).
    """
    name = os.environ.get("PIPELINE_EXECUTOR") or "in_process"
    if name == "in_process":
        return dg.in_process_executor
    if name == "multiprocess":
        return dg.multiprocess_executor
    if name == "celery":
        from dagster_celery import celery_executor

        return celery_executor.configured(
            {
                "broker": {"env": "DAGSTER_CELERY_BROKER_URL"},
                "backend": {"env": "DAGSTER_CELERY_BACKEND_URL"},
            }
        )
    if name == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor
    raise ValueError(f"PIPELINE_EXECUTOR={name!r}: use one of {', '.join(EXECUTORS)}.")


defs = dg.Definitions(
    assets=ASSETS,
    asset_checks=ASSET_CHECKS,
    jobs=JOBS,
    resources=RESOURCES,
    schedules=SCHEDULES,
    sensors=SENSORS,
    executor=executor_from_env(),
)

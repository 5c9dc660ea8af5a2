"""Assembles the Dagster Definitions from what assets/, resources/, schedules/ and sensors/ export.

The only module of the core that imports Dagster.
"""

import os

import dagster as dg

from assets import ASSETS, JOBS
from resources import RESOURCES
from schedules import SCHEDULES
from sensors import SENSORS

#: `PIPELINE_EXECUTOR` where Dagster runs: how a run's steps are executed.
EXECUTORS = ("multiprocess", "celery", "k8s")


def executor_from_env() -> dg.ExecutorDefinition | None:
    """The deployment's executor: Dagster's default (`make run`), Celery workers (deploy/), or
    one Kubernetes job per step (Helm). Celery's broker and result backend come from
    DAGSTER_CELERY_BROKER_URL and DAGSTER_CELERY_BACKEND_URL, as in deploy/celery.yaml."""
    name = os.environ.get("PIPELINE_EXECUTOR") or "multiprocess"
    if name == "multiprocess":
        return None
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
    jobs=JOBS,
    resources=RESOURCES,
    schedules=SCHEDULES,
    sensors=SENSORS,
    executor=executor_from_env(),
)

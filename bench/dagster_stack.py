"""A real Dagster deployment for the benchmark: instance storage on PostgreSQL, `dagster dev`
(webserver, daemon, code servers) in its own process group, and the GraphQL calls the benchmark
makes to it (launch a backfill or a job, wait for runs)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench.procs import wait_for

ROOT = Path(__file__).resolve().parents[1]

RUNS = """query ($tags: [ExecutionTag!]) { runsOrError(filter: {tags: $tags}, limit: 1000) {
  __typename ... on Runs { results { runId status startTime endTime
  tags { key value } } } } }"""
BACKFILL = """query ($id: String!) { partitionBackfillOrError(backfillId: $id) {
  __typename ... on PartitionBackfill { id status numPartitions } } }"""
LAUNCH_RUN = """mutation ($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
  ... on RunConfigValidationInvalid { errors { message } } } }"""
DONE = {"SUCCESS", "FAILURE", "CANCELED"}


def write_instance(home: Path, postgres_url: str, concurrent_runs: int) -> None:
    """dagster.yaml: PostgreSQL storage (psycopg2 named: see the project's Dagster notes), the
    queued coordinator's run limit, no telemetry."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(
        f"storage:\n  postgres:\n    postgres_url: {postgres_url}\n"
        f"concurrency:\n  runs:\n    max_concurrent_runs: {concurrent_runs}\n"
        "telemetry:\n  enabled: false\n"
    )


class DagsterDev:
    """`dagster dev -w workspace.yaml` on a free port; stopped with its whole process group."""

    def __init__(self, home: Path, port: int, env: dict[str, str], log: Path) -> None:
        self.home, self.port, self.env, self.log_path = home, port, env, log
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> DagsterDev:
        self.log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [str(Path(sys.executable).with_name("dagster")), "dev", "-w", "workspace.yaml",
             "-h", "127.0.0.1", "-p", str(self.port)],
            cwd=ROOT, env={"DAGSTER_EVENT_BATCH_SIZE": "1000", **self.env,
                            "DAGSTER_HOME": str(self.home)},
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

        def up() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"dagster dev exited; see {self.log_path}")
            try:
                return httpx.get(f"{self.url}/server_info", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, 240, "dagster dev answering", every=1)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:  # the code server can ignore SIGTERM
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.log.close()

    def graphql(self, query: str, **variables) -> dict:
        body = {"query": query, "variables": variables}
        response = httpx.post(f"{self.url}/graphql", json=body, timeout=120)
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise RuntimeError(f"GraphQL: {body['errors'][0].get('message')}")
        return body["data"]

    def runs(self, **tags: str) -> list[dict]:
        data = self.graphql(RUNS, tags=[{"key": k, "value": v} for k, v in tags.items()])
        return data["runsOrError"]["results"]

    def wait_runs(self, timeout: float, **tags: str) -> list[dict]:
        """Wait until at least one run has these tags and all of them are done."""

        def done() -> list[dict] | None:
            runs = self.runs(**tags)
            return runs if runs and all(r["status"] in DONE for r in runs) else None

        return wait_for(done, timeout, f"runs tagged {tags} finishing", every=2)

    def wait_backfill(self, backfill_id: str, timeout: float) -> list[dict]:
        def done() -> bool:
            status = self.graphql(BACKFILL, id=backfill_id)["partitionBackfillOrError"]
            return status.get("status") in {"COMPLETED", "FAILED", "CANCELED",
                                            "COMPLETED_SUCCESS", "COMPLETED_FAILED"}  # fmt: skip

        wait_for(done, timeout, f"backfill {backfill_id} finishing", every=2)
        return self.wait_runs(timeout, **{"dagster/backfill": backfill_id})

    def launch_job(self, job: str, run_config: dict, tags: dict[str, str]) -> str:
        params = {
            "selector": {"jobName": job, "repositoryName": "__repository__",
                         "repositoryLocationName": "assignar_pipeline.definitions"},
            "runConfigData": run_config,
            "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
        }  # fmt: skip
        result = self.graphql(LAUNCH_RUN, params=params)["launchRun"]
        if result["__typename"] != "LaunchRunSuccess":
            raise RuntimeError(f"launchRun: {result}")
        return result["run"]["runId"]

    def wait_run(self, run_id: str, timeout: float) -> dict:
        query = """query ($id: ID!) { runOrError(runId: $id) { __typename
          ... on Run { runId status startTime endTime } } }"""

        def done() -> dict | None:
            run = self.graphql(query, id=run_id)["runOrError"]
            return run if run.get("status") in DONE else None

        return wait_for(done, timeout, f"run {run_id}", every=0.5)


def run_seconds(runs: list[dict]) -> float:
    """Seconds from the first run's start to the last run's end."""
    starts = [r["startTime"] for r in runs if r.get("startTime")]
    ends = [r["endTime"] for r in runs if r.get("endTime")]
    return max(ends) - min(starts) if starts and ends else 0.0


def now() -> float:
    return time.monotonic()

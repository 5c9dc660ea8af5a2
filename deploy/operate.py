"""What an operator's script does against a running deployment, through Dagster's GraphQL API only:
connect a Pay team (the `connect_assignar` job, with the dagster-graphql client), launch a bulk
import (the `launchPartitionBackfill` mutation, which the client has no method for) and wait for
runs and backfills to finish."""

from __future__ import annotations

import time
from datetime import date
from urllib.parse import urlsplit

import httpx
from dagster_graphql import DagsterGraphQLClient

from assignar_pipeline.bulk import BulkImport, launch

FINISHED_RUN = {"SUCCESS", "FAILURE", "CANCELED"}
FINISHED_BACKFILL = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}

BACKFILL_QUERY = """
query ($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { id status runs(limit: 1000) { runId status tags { key value } } }
    ... on PythonError { message }
  }
}
"""


class OperationFailed(RuntimeError):
    """A run or backfill ended other than in success; the message says which and why."""


def client_for(url: str) -> DagsterGraphQLClient:
    parts = urlsplit(url)
    return DagsterGraphQLClient(
        parts.hostname or "127.0.0.1", port_number=parts.port, use_https=parts.scheme == "https"
    )


def graphql(url: str, query: str, variables: dict | None = None) -> dict:
    response = httpx.post(
        f"{url}/graphql", json={"query": query, "variables": variables or {}}, timeout=60
    )
    response.raise_for_status()
    body = response.json()
    if body.get("errors"):
        raise OperationFailed(f"GraphQL error: {body['errors'][0].get('message')}")
    return body["data"]


def wait_for_run(url: str, run_id: str, timeout: float = 300.0) -> str:
    client = client_for(url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get_run_status(run_id).value
        if status in FINISHED_RUN:
            return status
        time.sleep(1)
    raise OperationFailed(f"run {run_id} did not finish within {timeout:.0f} s")


def connect_demo_team(url: str, team_id: int, key: str = "demo", timeout: float = 300.0) -> str:
    """Connect the demo Pay team to the simulator's account by launching `connect_assignar`."""
    config = {
        "key": key,
        "team_id": team_id,
        "user_email": "priya.raman@example.com",
        "region": "au",
        "client_id": "demo-client",
        "client_secret_ref": "ASSIGNAR_CLIENT_SECRET",
        "timezone": "Australia/Sydney",
        "import_timesheets": True,
        "import_orders": True,
    }
    run_id = client_for(url).submit_job_execution(
        "connect_assignar", run_config={"ops": {"connect_pay_team": {"config": config}}}
    )
    status = wait_for_run(url, run_id, timeout)
    if status != "SUCCESS":
        raise OperationFailed(f"connect_assignar run {run_id} ended {status}: see the Dagster UI")
    return run_id


def launch_bulk_import(
    url: str, start: date, end: date, connections: tuple[str, ...], **tags: str
) -> str:
    """A bulk import of timesheets over [start, end] as a backfill; returns its id."""
    spec = BulkImport(start=start, end=end, connections=connections, extra_tags=tags)
    return launch(f"{url}/graphql", spec)


def backfill(url: str, backfill_id: str) -> dict:
    data = graphql(url, BACKFILL_QUERY, {"id": backfill_id})["partitionBackfillOrError"]
    if data["__typename"] != "PartitionBackfill":
        raise OperationFailed(f"backfill {backfill_id}: {data.get('message', data)}")
    return data


def wait_for_backfill(url: str, backfill_id: str, timeout: float = 600.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = backfill(url, backfill_id)
        if data["status"] in FINISHED_BACKFILL:
            return data
        time.sleep(2)
    raise OperationFailed(f"backfill {backfill_id} did not finish within {timeout:.0f} s")

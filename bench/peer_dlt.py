"""The peer: dlt's `rest_api` source over the same simulator, loading into the same PostgreSQL.

    python -m bench.peer_dlt --api URL --token-url URL --client-id ID --secret-env VAR \
        --first 2023-01-01 --last 2025-12-31 --postgres URL

Configured as a user would configure it to do the pipeline's fetch: OAuth2 client credentials
(HTTP Basic, as Assignar's token endpoint takes them), the same resources (timesheets windowed by
`submitted_date`, confirmed orders by `start_date`, over the same dates), the same `fields`, page
size and keyset paging (`sort=id`, `id__gt`), written with `merge` on `id` so that a re-run is
idempotent like ours. dlt lands raw rows (nested lists become child tables); it validates,
reconciles and loads nothing into Pay. Prints one JSON line with rows, seconds and dlt's steps.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import tempfile
import time
from datetime import date
from typing import Any

import dlt
from dlt.common.configuration import configspec
from dlt.sources.helpers.rest_client.auth import OAuth2ClientCredentials
from dlt.sources.helpers.rest_client.paginators import BasePaginator
from dlt.sources.rest_api import rest_api_source

from assignar_pipeline.extract import CONFIRMED_ORDER_STATUSES, FIELDS, PAGE_SIZE
from assignar_pipeline.regions import SCOPE


@configspec
class BasicClientCredentials(OAuth2ClientCredentials):
    """Client credentials sent as HTTP Basic (dlt's default puts them in the form body)."""

    def build_access_token_request(self) -> dict[str, Any]:
        basic = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        return {
            "headers": {"Authorization": f"Basic {basic}"},
            "data": {"grant_type": "client_credentials", **self.access_token_request_data},
        }


class KeysetPaginator(BasePaginator):
    """`id__gt=<last id>` until a short page, as the pipeline's client pages."""

    def __init__(self, page_size: int) -> None:
        super().__init__()
        self.page_size = page_size
        self.last_id: int | None = None

    def update_state(self, response: Any, data: list[Any] | None = None) -> None:
        if not data or len(data) < self.page_size:
            self._has_next_page = False
        else:
            self.last_id = data[-1]["id"]

    def update_request(self, request: Any) -> None:
        request.params["id__gt"] = self.last_id


def source(api: str, token_url: str, client_id: str, secret: str, first: date, last: date,
           statuses: list[int]):  # fmt: skip
    common = {"page_size": PAGE_SIZE, "sort": "id", "page": 1}

    def resource(name: str, path: str, selector: str, window: str, extra: dict) -> dict:
        return {
            "name": name,
            "primary_key": "id",
            "write_disposition": "merge",
            "endpoint": {
                "path": path,
                "data_selector": selector,
                "paginator": KeysetPaginator(PAGE_SIZE),
                "params": {
                    **common,
                    "fields": ",".join(FIELDS[name]),
                    f"{window}__between": f"{first},{last}",
                    **extra,
                },
            },
        }

    return rest_api_source(
        {
            "client": {
                "base_url": api + "/",
                "auth": BasicClientCredentials(
                    access_token_url=token_url,
                    client_id=client_id,
                    client_secret=secret,
                    access_token_request_data={"scope": SCOPE},
                ),
            },
            "resources": [
                resource("timesheets", "timesheets-expanded", "data.rows", "submitted_date", {}),
                resource("orders", "orders", "data", "start_date",
                         {"status_id__in": ",".join(map(str, statuses))}),
            ],
        }
    )  # fmt: skip


def confirmed_statuses(api: str, token_url: str, client_id: str, secret: str) -> list[int]:
    import httpx

    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    token = httpx.post(
        token_url,
        headers={"Authorization": f"Basic {basic}"},
        data={"grant_type": "client_credentials", "scope": SCOPE},
    ).json()
    statuses = httpx.get(
        f"{api}/order-statuses", headers={"Authorization": f"Bearer {token['access_token']}"}
    ).json()
    return [s["id"] for s in statuses["data"]
            if str(s.get("name", "")).lower() in CONFIRMED_ORDER_STATUSES]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("--api", "--token-url", "--client-id", "--secret-env", "--postgres"):
        parser.add_argument(name, required=True)
    parser.add_argument("--first", type=date.fromisoformat, required=True)
    parser.add_argument("--last", type=date.fromisoformat, required=True)
    args = parser.parse_args()
    secret = os.environ[args.secret_env]
    statuses = confirmed_statuses(args.api, args.token_url, args.client_id, secret)
    with tempfile.TemporaryDirectory() as tmp:
        pipeline = dlt.pipeline(
            pipeline_name="bench_dlt",
            pipelines_dir=tmp,
            destination=dlt.destinations.postgres(credentials=args.postgres),
            dataset_name="assignar_dlt",
            progress="log" if os.environ.get("BENCH_DLT_PROGRESS") else None,
        )
        started = time.perf_counter()
        pipeline.run(source(args.api, args.token_url, args.client_id, secret, args.first,
                            args.last, statuses))  # fmt: skip
        seconds = time.perf_counter() - started
        steps = {
            step.step: (step.finished_at - step.started_at).total_seconds()
            for step in pipeline.last_trace.steps
            if step.finished_at and step.started_at
        }
        with pipeline.sql_client() as client:
            rows = {
                name: client.execute_sql(f"SELECT count(*) FROM {name}")[0][0]  # noqa: S608
                for name in ("timesheets", "orders")
            }
    print(json.dumps({"rows": sum(rows.values()), "tables": rows, "seconds": seconds,
                      "steps": steps}))  # fmt: skip


if __name__ == "__main__":
    main()

"""What the machine allows for the full import's rows: a bare fetch loop, and COPY.

Fetch limit (`python -m bench.limits fetch ...`, its own process): the exact requests the
pipeline's extract makes for the same range (same 7-day pieces newest first, the same filters,
`fields`, page size and keyset paging, one token), over one keep-alive httpx connection, each
page parsed with orjson and nothing else done with it.

Load limit (`copy_limit`): the rows the pipeline wrote to its staging and Pay tables, copied out
to files first (not timed), then COPYed into empty tables of the same definition (`LIKE ...
INCLUDING ALL`: the same indexes and constraints), timed.
"""

from __future__ import annotations

import argparse
import base64
import json
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import httpx
import orjson
import psycopg2

from assignar_pipeline.client import encode_filters
from assignar_pipeline.extract import (
    CONFIRMED_ORDER_STATUSES,
    DAYS_PER_FETCH,
    FIELDS,
    PAGE_SIZE,
    RESOURCES,
    WINDOW_FIELDS,
    split_window,
)
from assignar_pipeline.regions import SCOPE

#: The tables a full import writes per dated record, in the order COPY fills them.
LOADED_TABLES = (
    "staging_timesheet", "staging_order", "timesheet", "timesheet_line", "pay_order",
    "pay_order_line",
)  # fmt: skip


def fetch(api: str, token_url: str, client_id: str, secret: str, first: date, last: date,
          entities: list[str]) -> dict:  # fmt: skip
    """Fetch every record of [first, last] the way extract does; rows and seconds."""
    started = time.perf_counter()
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    rows = requests = 0
    with httpx.Client(timeout=60) as http:
        token = http.post(
            token_url,
            headers={"Authorization": f"Basic {basic}"},
            data={"grant_type": "client_credentials", "scope": SCOPE},
        ).json()["access_token"]
        requests += 1
        headers = {"Authorization": f"Bearer {token}"}

        def pages(resource: str, filters: dict, fields) -> int:
            nonlocal requests
            params = encode_filters(filters)
            if fields:
                params["fields"] = ",".join(fields)
            params.update(page_size=str(PAGE_SIZE), sort="id", page="1")
            count, floor = 0, None
            while True:
                if floor is not None:
                    params["id__gt"] = str(floor)
                response = http.get(f"{api}/{resource}", params=params, headers=headers)
                response.raise_for_status()
                requests += 1
                data = orjson.loads(response.content)["data"]
                page = data["rows"] if isinstance(data, dict) else data
                count += len(page)
                if len(page) < PAGE_SIZE:
                    return count
                floor = page[-1]["id"]

        statuses = []
        if "orders" in entities:
            response = http.get(f"{api}/order-statuses", params={"page_size": "500"},
                                headers=headers)  # fmt: skip
            requests += 1
            statuses = [s["id"] for s in orjson.loads(response.content)["data"]
                        if str(s.get("name", "")).lower() in CONFIRMED_ORDER_STATUSES]  # fmt: skip
        window = (first, last + timedelta(days=1))
        for entity in entities:
            for piece in list(split_window(window, DAYS_PER_FETCH))[::-1]:
                filters: dict = {
                    f"{WINDOW_FIELDS[entity]}__between": [piece[0], piece[1] - timedelta(days=1)]
                }
                if entity == "orders":
                    filters["status_id__in"] = statuses
                rows += pages(RESOURCES[entity], filters, FIELDS.get(entity))
    return {"rows": rows, "requests": requests, "seconds": time.perf_counter() - started}


def copy_limit(dsn: dict) -> dict:
    """COPY the rows the import wrote into fresh tables of the same definition; rows, seconds."""
    conn = psycopg2.connect(**dsn)
    out: dict = {"tables": {}}
    try:
        with tempfile.TemporaryDirectory() as tmp, conn.cursor() as cur:
            for name in LOADED_TABLES:
                path = Path(tmp) / name
                with path.open("w") as f:
                    cur.copy_expert(f"COPY {name} TO STDOUT", f)
                cur.execute(f"DROP TABLE IF EXISTS limit_{name}")
                cur.execute(f"CREATE TABLE limit_{name} (LIKE {name} INCLUDING ALL)")
            conn.commit()
            total = 0.0
            for name in LOADED_TABLES:
                path = Path(tmp) / name
                started = time.perf_counter()
                with path.open() as f:
                    cur.copy_expert(f"COPY limit_{name} FROM STDIN", f)
                conn.commit()
                seconds = time.perf_counter() - started
                cur.execute(f"SELECT count(*) FROM limit_{name}")  # noqa: S608 (our names)
                out["tables"][name] = {"rows": cur.fetchone()[0], "seconds": seconds}
                total += seconds
            for name in LOADED_TABLES:
                cur.execute(f"DROP TABLE limit_{name}")
            conn.commit()
    finally:
        conn.close()
    out["seconds"] = total
    out["rows"] = sum(out["tables"][n]["rows"] for n in ("staging_timesheet", "staging_order"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="The fetch limit: " + __doc__.splitlines()[0])
    parser.add_argument("command", choices=["fetch"])
    parser.add_argument("--api", required=True)
    parser.add_argument("--token-url", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--secret-env", required=True)
    parser.add_argument("--first", type=date.fromisoformat, required=True)
    parser.add_argument("--last", type=date.fromisoformat, required=True)
    parser.add_argument("--entities", default="timesheets,orders")
    args = parser.parse_args()
    import os

    result = fetch(args.api, args.token_url, args.client_id, os.environ[args.secret_env],
                   args.first, args.last, args.entities.split(","))  # fmt: skip
    print(json.dumps(result))


if __name__ == "__main__":
    main()

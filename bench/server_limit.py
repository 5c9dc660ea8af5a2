"""The server limit: what one 1,000-row page of /timesheets-expanded costs the simulator.

    uv run python -m bench.server_limit [--scale 1] [--pages 200] [--runs 3]

Generates the large tenant in this process and calls the simulator's ASGI app directly (no
socket, no client), with the exact requests the pipeline's extract makes: 7-day
`submitted_date__between` pieces, `page_size=1000`, keyset paging (`sort=id`, `id__gt`), once
with the pipeline's `fields` and once for whole rows. Each page is timed with
`time.process_time()` around the app call, so the figure is server CPU, not wall time (the
machine is shared). Pieces are spread evenly over the whole range; a run reads `--pages` pages
per mode. Prints one JSON line per run and a summary (medians over runs).

The simulator keeps the rows of a field set once it has served them, and the pipeline's from
generation (`ResourceSpec.ready_fields`). Run 1 is the first read of the chosen rows (for a field
set not made ready, they are cut from the whole rows then), later runs read them kept: the
summary's `fields` figures are the later runs' (with `--runs` > 1), `fields_first_read` is run
1's. `--read-all` then reads every row of the tenant with `fields` once, as a full import does,
and reports the memory with every row's projection kept.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import statistics
import time
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

import orjson

from assignar_pipeline.client import encode_filters
from assignar_pipeline.extract import DAYS_PER_FETCH, FIELDS, PAGE_SIZE, WINDOW_FIELDS
from assignar_pipeline.regions import SCOPE
from assignar_pipeline.simulator import TenantConfig
from assignar_pipeline.simulator.app import SimulatorApp
from assignar_pipeline.simulator.auth import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from assignar_pipeline.simulator.state import Simulator

PATH = "/v2/timesheets-expanded"


def rss_mb() -> float:
    """Resident memory of this process now (Linux)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class InProcess:
    """Calls the ASGI app the way uvicorn would, collecting the response."""

    def __init__(self, app: SimulatorApp) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()

    def call(self, method: str, path: str, query: str = "", headers=(), body: bytes = b""):
        """(status, body, cpu seconds of the app call)."""
        scope = {
            "type": "http",
            "method": method,
            "path": path,
            "query_string": query.encode(),
            "headers": [(k.encode(), v.encode()) for k, v in headers],
            "client": ("127.0.0.1", 1),
        }
        out: dict[str, Any] = {"body": []}

        async def receive() -> dict:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict) -> None:
            if message["type"] == "http.response.start":
                out["status"] = message["status"]
            else:
                out["body"].append(message.get("body", b""))

        async def timed() -> float:
            started = time.process_time()
            await self.app(scope, receive, send)
            return time.process_time() - started

        cpu = self.loop.run_until_complete(timed())
        return out["status"], b"".join(out["body"]), cpu


def token(client: InProcess) -> str:
    basic = base64.b64encode(f"{DEFAULT_CLIENT_ID}:{DEFAULT_CLIENT_SECRET}".encode()).decode()
    form = urlencode({"grant_type": "client_credentials", "scope": SCOPE}).encode()
    status, body, _ = client.call(
        "POST", "/oauth2/token", headers=[("authorization", f"Basic {basic}")], body=form
    )
    assert status == 200, body
    return orjson.loads(body)["access_token"]


def pieces(sim: Simulator, pages: int | None) -> list[tuple[date, date]]:
    """7-day pieces of the tenant's whole range, newest first, thinned to about `pages` pages
    (all of them when `pages` is None)."""
    dates = sim.tables["timesheets-expanded"].sorted_idx["submitted_date"]
    first, last = date.fromisoformat(dates[0][0]), date.fromisoformat(dates[-1][0])
    out = []
    end = last + timedelta(days=1)
    while end > first:
        start = max(first, end - timedelta(days=DAYS_PER_FETCH))
        out.append((start, end - timedelta(days=1)))
        end = start
    if pages is None:
        return out
    per_piece = max(1, round(len(dates) / len(out) / PAGE_SIZE + 0.49))
    keep = max(1, min(len(out), pages // per_piece))
    step = len(out) / keep
    return [out[int(i * step)] for i in range(keep)]


def read(
    client: InProcess, bearer: str, chosen, fields: tuple[str, ...] | None
) -> list[tuple[int, float]]:
    """(rows, CPU seconds) of every page read."""
    per_page = []
    headers = [("authorization", f"Bearer {bearer}")]
    for lo, hi in chosen:
        params = encode_filters({f"{WINDOW_FIELDS['timesheets']}__between": [lo, hi]})
        if fields:
            params["fields"] = ",".join(fields)
        params.update(page_size=str(PAGE_SIZE), sort="id", page="1")
        while True:
            status, body, cpu = client.call("GET", PATH, urlencode(params), headers)
            assert status == 200, body[:300]
            rows = orjson.loads(body)["data"]["rows"]
            per_page.append((len(rows), cpu))
            if len(rows) < PAGE_SIZE:
                break
            params["id__gt"] = str(rows[-1]["id"])
    return per_page


def summary(pages: list[tuple[int, float]]) -> dict[str, float]:
    """Full pages' median and p90 CPU; rows/s over every page read (short ones too)."""
    full = sorted(cpu for rows, cpu in pages if rows == PAGE_SIZE) or [float("nan")]
    rows = sum(r for r, _ in pages)
    cpu = sum(c for _, c in pages)
    return {
        "pages": len(pages),
        "full_pages": len(full),
        "median_ms": round(statistics.median(full) * 1000, 3),
        "p90_ms": round(full[int(len(full) * 0.9)] * 1000, 3),
        "ms_per_1000_rows": round(cpu / rows * PAGE_SIZE * 1000, 3),
        "rows_per_s": round(rows / cpu),
    }


def measure(scale: float, pages: int, runs: int, read_all: bool = False) -> dict[str, Any]:
    """Generate the tenant, then `runs` runs of both modes; medians over the runs."""
    gc.collect()
    before = rss_mb()
    started = time.process_time()
    sim = Simulator(TenantConfig.large(scale))
    generation = time.process_time() - started
    gc.collect()
    client = InProcess(SimulatorApp(sim))
    bearer = token(client)
    chosen = pieces(sim, pages)
    modes = {"fields": FIELDS["timesheets"], "whole": None}
    results: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
    for run in range(runs):
        for mode, fields in modes.items():
            figures = summary(read(client, bearer, chosen, fields))
            results[mode].append(figures)
            print(json.dumps({"run": run + 1, "mode": mode, **figures}), flush=True)
    out: dict[str, Any] = {
        "scale": scale,
        "timesheets": len(sim.tables["timesheets-expanded"]),
        "generation_cpu_s": round(generation, 1),
        "rss_mb": round(rss_mb() - before),
        "fields_first_read": results["fields"][0],
    }
    if read_all:
        every = summary(read(client, bearer, pieces(sim, None), modes["fields"]))
        gc.collect()
        out["read_all"] = {**every, "rss_mb": round(rss_mb() - before)}
    for mode, figs in results.items():
        if mode == "fields" and len(figs) > 1:
            figs = figs[1:]  # rows kept; the first read is reported on its own
        out[mode] = {
            "median_ms": statistics.median(f["median_ms"] for f in figs),
            "p90_ms": statistics.median(f["p90_ms"] for f in figs),
            "ms_per_1000_rows": statistics.median(f["ms_per_1000_rows"] for f in figs),
            "rows_per_s": statistics.median(f["rows_per_s"] for f in figs),
            "pages": figs[0]["pages"],
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="large tenant scale (1: 1.5 M)")
    parser.add_argument("--pages", type=int, default=200, help="pages read per mode and run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--read-all", action="store_true", help="then read every row with fields (memory)"
    )
    args = parser.parse_args()
    result = measure(args.scale, args.pages, args.runs, args.read_all)
    print(json.dumps(result))
    first = result["fields_first_read"]
    print(
        f"server limit (fields, first read of the rows): {first['ms_per_1000_rows']:.2f} ms CPU "
        f"per 1,000 rows, full pages median {first['median_ms']:.2f} ms (p90 {first['p90_ms']:.2f})"
    )
    for mode in ("fields", "whole"):
        r = result[mode]
        print(
            f"server limit ({mode}): {r['ms_per_1000_rows']:.2f} ms CPU per 1,000 rows, "
            f"full pages median {r['median_ms']:.2f} ms (p90 {r['p90_ms']:.2f}), "
            f"{r['rows_per_s']:,.0f} rows/s on one core; "
            f"{result['timesheets']:,} timesheets, tenant RSS {result['rss_mb']:,} MB"
        )
    if "read_all" in result:
        every = result["read_all"]
        print(
            f"every row read with fields ({every['pages']:,} pages, "
            f"{every['ms_per_1000_rows']:.2f} ms CPU per 1,000 rows): "
            f"tenant RSS {every['rss_mb']:,} MB with every row's projection kept"
        )


if __name__ == "__main__":
    main()

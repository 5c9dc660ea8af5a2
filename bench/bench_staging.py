"""Throughput of `assignar_pipeline.staging.stage_frame` on simulator timesheets, in chunks.

    uv run python bench/bench_staging.py [--workers 150] [--chunk 5000] [--url sqlite:///x.db]

Validates once, then times staging into an empty database (all inserted) and again (all
unchanged), each in one transaction per chunk as `extract` does. The default database is a
SQLite file in a temporary directory; pass a PostgreSQL URL to measure COPY + merge.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import orjson

from assignar_pipeline.pay.database import create_pay_engine, migrate
from assignar_pipeline.schemas import validate
from assignar_pipeline.simulator import Simulator, TenantConfig
from assignar_pipeline.staging import stage_frame
from tests.support.sync import add_connection


def measure(url: str, workers: int, chunk: int) -> None:
    sim = Simulator(TenantConfig(workers=workers, projects=40))
    records = [
        json.loads(orjson.dumps(r), parse_float=Decimal) for r in sim.records("timesheets-expanded")
    ]
    frames = [
        validate("timesheets", records[i : i + chunk], timezone="Australia/Sydney").frame
        for i in range(0, len(records), chunk)
    ]
    engine = create_pay_engine(url)
    migrate(engine)
    connection_id = add_connection(engine, f"bench-{time.time_ns()}")
    fetched_at = datetime.now(UTC)
    for label in ("first load", "rerun"):
        started = time.perf_counter()
        cpu = time.process_time()
        totals = [0, 0, 0]
        for frame in frames:
            with engine.begin() as conn:
                counts = stage_frame(conn, "timesheets", connection_id, frame, fetched_at)
            totals[0] += counts.inserted
            totals[1] += counts.updated
            totals[2] += counts.unchanged
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu
        print(
            f"{engine.dialect.name} {label:<10} {len(records)} timesheets: "
            f"{len(records) / wall:>9,.0f}/s wall, {len(records) / cpu:>9,.0f}/s of this "
            f"process's CPU; inserted {totals[0]}, updated {totals[1]}, unchanged {totals[2]}"
        )
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=150)
    parser.add_argument("--chunk", type=int, default=5000)
    parser.add_argument("--url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        measure(args.url or f"sqlite:///{Path(tmp) / 'pay.db'}", args.workers, args.chunk)


if __name__ == "__main__":
    main()

"""Throughput of `assignar_pipeline.schemas.validate` on simulator records, in chunks.

    uv run python bench/bench_schemas.py [--workers 150] [--chunk 5000] [--repeat 5]

Records go through orjson and `json.loads(..., parse_float=Decimal)` first, as the client
delivers them; only `validate` is timed, up to its columnar result (`Validated.frame`; the
row dicts of `Validated.rows` are built only when asked for).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from decimal import Decimal

import orjson

from assignar_pipeline.entities import ENTITIES
from assignar_pipeline.schemas import validate
from assignar_pipeline.simulator import Simulator, TenantConfig

#: The simulator's table of each entity (API paths without their trailing slash), dated first.
RESOURCES = {e.name: e.resource.rstrip("/") for e in sorted(ENTITIES, key=lambda e: not e.dated)}


def measure(workers: int = 150, orders: int = 10_000, chunk: int = 5000, repeat: int = 5,
            entity: str | None = None) -> dict[str, float]:  # fmt: skip
    """Median records/s of `validate` per entity, printed as it goes."""
    sim = Simulator(TenantConfig(workers=workers, projects=40, orders=orders))
    validate("projects", [], timezone="UTC")  # load time zone names and compile schemas once
    medians = {}
    for name, resource in RESOURCES.items():
        if entity and name != entity:
            continue
        records = [json.loads(orjson.dumps(r), parse_float=Decimal) for r in sim.records(resource)]
        chunks = [records[i : i + chunk] for i in range(0, len(records), chunk)]
        rates = []
        cpu_rates = []
        rows = quarantined = 0
        for _ in range(repeat):
            started = time.perf_counter()
            cpu = time.process_time()
            rows = quarantined = 0
            for part in chunks:
                result = validate(name, part, timezone="Australia/Sydney")
                rows += len(result.frame)
                quarantined += len(result.quarantined)
            rates.append(len(records) / (time.perf_counter() - started))
            cpu_rates.append(len(records) / (time.process_time() - cpu))
        medians[name] = statistics.median(rates)
        print(
            f"{name:<11} {len(records):>7} records in chunks of {chunk}: "
            f"median {medians[name]:>9,.0f} records/s "
            f"(best {max(rates):,.0f}; {statistics.median(cpu_rates):,.0f}/s of this process's "
            f"CPU time); rows {rows}, quarantined {quarantined}"
        )
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=150)
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--chunk", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--entity", choices=sorted(RESOURCES), default=None)
    args = parser.parse_args()
    measure(args.workers, args.orders, args.chunk, args.repeat, args.entity)


if __name__ == "__main__":
    main()

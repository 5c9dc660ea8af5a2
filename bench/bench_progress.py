"""What Dagster's bookkeeping costs one ranged run of a daily-partitioned asset, per way of
reporting progress.

    uv run --group bench python -m bench.bench_progress [--days 366] [--repeat 1]

Starts a throw-away PostgreSQL for the instance's storage (as deployed) and, in a fresh Python per
case, materializes one asset that does no work over `--days` daily partitions as ONE run, three
ways: no progress reports; a log line per 7-day piece; a materialization per date (what
`assets/reporting.DateProgress` does, so a long run's partitions turn green as it goes). Each
case also runs with Dagster's opt-in event batching (`DAGSTER_EVENT_BATCH_SIZE`). Prints the
run's seconds per case; the difference between cases is the cost of the reports, the rest is
Dagster's own per-partition events (a planned event per date when the run is created, a
materialization per date when the step ends).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.dagster_stack import ROOT, write_instance

MODES = {
    "none": "no progress reports",
    "log_per_piece": "a log line per 7-day piece",
    "materialization_per_date": "a materialization per date (DateProgress)",
}


def child(days: int, mode: str) -> None:
    """In the measured process: one ranged run of a do-nothing asset; prints JSON."""
    import time
    from datetime import date, timedelta

    import dagster as dg

    @dg.asset(partitions_def=dg.DailyPartitionsDefinition(start_date="2020-01-01"))
    def dates(context: dg.AssetExecutionContext) -> None:
        window = context.partition_time_window
        day, end = window.start.date(), window.end.date()
        while day < end:
            if mode == "materialization_per_date":
                context.log_event(
                    dg.AssetMaterialization(context.asset_key, partition=day.isoformat())
                )
            elif mode == "log_per_piece" and (day - window.start.date()).days % 7 == 6:
                context.log.info(f"piece ending {day} finished")
            day += timedelta(days=1)

    first = date(2021, 1, 1)
    tags = {
        "dagster/asset_partition_range_start": first.isoformat(),
        "dagster/asset_partition_range_end": (first + timedelta(days=days - 1)).isoformat(),
    }
    with dg.DagsterInstance.get() as instance:
        started = time.perf_counter()
        result = dg.materialize([dates], instance=instance, tags=tags)
        seconds = time.perf_counter() - started
    print(json.dumps({"success": result.success, "seconds": seconds}))


def main() -> None:
    from tests.support.postgres import TemporaryPostgres

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=366)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(int(args.child[0]), args.child[1])
        return
    print(f"# One run of one daily-partitioned asset over {args.days} dates, PostgreSQL storage")
    with TemporaryPostgres() as pg, tempfile.TemporaryDirectory() as tmp:
        for n in range(args.repeat):
            for mode, label in MODES.items():
                for batch in ("0", "1000"):
                    name = f"i{n}_{mode}_{batch}"
                    home = Path(tmp) / name
                    write_instance(home, pg.create_database(name), 1)
                    env = {**os.environ, "DAGSTER_HOME": str(home),
                           "DAGSTER_EVENT_BATCH_SIZE": batch}  # fmt: skip
                    out = subprocess.run(
                        [sys.executable, "-m", "bench.bench_progress", "--child",
                         str(args.days), mode],
                        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
                    )  # fmt: skip
                    if out.returncode != 0:
                        raise RuntimeError(f"{name} failed:\n{out.stderr[-3000:]}")
                    figures = json.loads(out.stdout.strip().splitlines()[-1])
                    batching = "batched" if batch != "0" else "unbatched"
                    print(f"  {label:<44} {batching:<9} {figures['seconds']:6.1f} s "
                          f"(success {figures['success']})", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()

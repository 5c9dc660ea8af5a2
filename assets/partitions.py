"""Partitions by local work date and the backfill policy shared by the dated assets."""

import os
import warnings

import dagster as dg

# BackfillPolicy is still marked beta in Dagster 1.13 (dagster-notes.md); ranged backfills are a
# deliberate choice here, so its warning on every code-location load is noise in `make run`.
warnings.filterwarnings("ignore", category=dg.BetaWarning, message=".*backfill_policy.*")

#: The first date a backfill can reach (`PIPELINE_HISTORY_START`, ISO date).
HISTORY_START = os.environ.get("PIPELINE_HISTORY_START", "2020-01-01")

#: One partition per local work date. The newest partition is today in the world's most
#: eastern time zone, so that a tenant whose day has begun can sync it; each connection's own
#: time zone decides which date a shift belongs to.
work_dates = dg.DailyPartitionsDefinition(
    start_date=HISTORY_START, timezone="Pacific/Kiritimati", end_offset=1
)

#: Days per ranged backfill run (`BACKFILL_DAYS_PER_RUN`). A run costs seconds to start whatever
#: its range while a day of one connection's data is little work, and the assets stream their
#: range in 7-day pieces (memory does not grow with it), so a run covers a year: three years of
#: history are 3 runs, not 36. Several connections of one import share each run (run config).
BACKFILL_DAYS_PER_RUN = int(os.environ.get("BACKFILL_DAYS_PER_RUN", "366"))
backfill_policy = dg.BackfillPolicy.multi_run(max_partitions_per_run=BACKFILL_DAYS_PER_RUN)

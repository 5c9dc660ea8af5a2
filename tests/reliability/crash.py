"""Runs that die: a materialization in a process of its own that SIGKILLs itself (or waits while
the test restarts PostgreSQL) when it is about to execute a chosen SQL statement.

The moment is chosen by SQL, not by time, so that each case is exact and repeatable: the n-th
statement that starts with a given text (an INSERT into staging, an UPDATE of a Pay timesheet, the
sync-log row of the load). The hook is a SQLAlchemy event in the child process only.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from dataclasses import dataclass
from datetime import timedelta

#: How long a paused run waits for the test to restart the database under it.
PAUSE_SECONDS = 4.0


@dataclass(frozen=True)
class KillPoint:
    """Kill (or pause) the run when it is about to execute the `nth` statement containing
    `sql` (and `param` among its parameters, when given)."""

    name: str
    sql: str
    nth: int = 1
    param: str | None = None


#: The moments the issue names, for a timesheets run over WINDOW.
KILL_POINTS = [
    KillPoint("mid-fetch (a chunk staged, the next being written)", "INTO staging_timesheet", 2),
    KillPoint("mid-transaction (Pay timesheets being written)", "UPDATE timesheet SET"),
    KillPoint("between the Pay load and its sync-log row", "INSERT INTO sync_log", 1, "pay_"),
    KillPoint("after the fetch, before its sync-log row", "INSERT INTO sync_log", 1, "timesheets"),
]


def _install(point: KillPoint, action) -> None:
    import sqlalchemy as sa
    from sqlalchemy.engine import Engine

    seen = 0

    def before(conn, cursor, statement, parameters, context, executemany) -> None:
        nonlocal seen
        if point.sql not in statement:
            return
        if point.param is not None and point.param not in repr(parameters):
            return
        seen += 1
        if seen == point.nth:
            action()

    sa.event.listen(Engine, "before_cursor_execute", before)


def run_until(
    env: dict[str, str],
    pay_url: str,
    selection: list[str],
    window,
    point: KillPoint,
    mode: str,
    paused=None,
) -> bool:
    """In the child: materialize `selection`, and at `point` SIGKILL this process (mode "kill")
    or set `paused` and sleep while the parent restarts the database (mode "pause")."""
    import dagster as dg

    from assignar_pipeline import extract
    from assignar_pipeline.definitions import defs
    from resources import PayDatabaseResource, SyncScope
    from tests.reliability import harness

    os.environ.update(env)
    extract.PAGE_SIZE = harness.PAGE_SIZE
    extract.CHUNK_RECORDS = harness.CHUNK_RECORDS

    def kill() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    def pause() -> None:
        paused.set()
        time.sleep(PAUSE_SECONDS)

    _install(point, kill if mode == "kill" else pause)
    assets = [a for a in defs.assets if a.key.path[-1] in selection]
    with dg.instance_for_test() as instance:
        return dg.materialize(
            assets,
            instance=instance,
            tags={
                "dagster/asset_partition_range_start": window[0].isoformat(),
                "dagster/asset_partition_range_end": (window[1] - timedelta(days=1)).isoformat(),
            },
            resources={
                "assignar": harness.fast_assignar(),
                "pay": PayDatabaseResource(url=pay_url),
                "scope": SyncScope(),
            },
            raise_on_error=False,
        ).success


def start(env, pay_url, selection, window, point, mode="kill"):
    """The run in a spawned process; returns (process, paused event)."""
    context = multiprocessing.get_context("spawn")
    paused = context.Event()
    process = context.Process(
        target=run_until, args=(env, pay_url, selection, window, point, mode, paused)
    )
    process.start()
    return process, paused

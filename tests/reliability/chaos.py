"""`make chaos`: the fault matrix's longer, randomized pass, with a table of every case.

Every fault on every entity, on SQLite and on PostgreSQL, in a random order, with random counts and
parameters; then SIGKILLs at random statements of random runs. Seeded (CHAOS_SEED, else the clock)
and the seed is printed, so a failing pass can be replayed exactly:

    make chaos                    # a new seed
    CHAOS_SEED=1234 make chaos    # the same cases again
    CHAOS_KILLS=10 make chaos     # more kills (default 6)
    CHAOS_CASES=20 make chaos     # only the first 20 fault cases of the shuffled product
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

import dagster as dg
import pytest

from assignar_pipeline import extract
from assignar_pipeline.pay.database import create_pay_engine, migrate
from assignar_pipeline.simulator import SimulatorServer
from tests.reliability import crash, harness
from tests.support.pipeline import Pipeline, make_pipeline
from tests.support.postgres import TemporaryPostgres

#: (moment, statement, parameter, how many of them a run makes at least): the run dies at one.
KILL_STATEMENTS = [
    ("mid-fetch, staging", "INTO staging_timesheet", None, 2),
    ("mid-transaction, Pay", "UPDATE timesheet SET", None, 2),
    ("after load, before log", "INSERT INTO sync_log", "pay_", 1),
    ("after fetch, before log", "INSERT INTO sync_log", "timesheets", 1),
    ("before sync_state", "INTO sync_state", None, 1),
    ("mid-transaction, holds", "DELETE FROM sync_hold", None, 1),
]


def _vary(fault: harness.Fault, rng: random.Random) -> harness.Fault:
    """The same fault with random strength, kept within what its expectation allows."""
    params = dict(fault.params)
    if fault.expect == "recovers" and isinstance(params.get("count"), int):
        params["count"] = rng.randint(1, params["count"])
    if fault.kind == "drop":
        params["fraction"] = round(rng.uniform(0.0, 0.95), 2)
    if fault.kind == "churn":
        params["count"] = rng.randint(1, 4)
    if "after_requests" in params and fault.expect == "recovers":
        params["after_requests"] = rng.randint(1, 3)  # a failure must land before the last page
    return replace(fault, params=params)


class Bench:
    """One simulator, one PostgreSQL cluster, a template Pay database per backend."""

    def __init__(self, root: Path, stack) -> None:
        self.root = root
        self.simulator = stack.enter_context(SimulatorServer(config=harness.SMALL))
        self.postgres = stack.enter_context(TemporaryPostgres())
        (root / "dagster").mkdir()
        self.instance = stack.enter_context(dg.instance_for_test(temp_dir=str(root / "dagster")))
        self.mp = stack.enter_context(pytest.MonkeyPatch.context())
        self.mp.setattr(extract, "PAGE_SIZE", harness.PAGE_SIZE)
        self.mp.setattr(extract, "CHUNK_RECORDS", harness.CHUNK_RECORDS)
        self.templates = {
            "sqlite": self._template(f"sqlite:///{root / 'template.db'}"),
            "postgresql": self._template(self.postgres.create_database("chaos_template")),
        }
        self.cases = 0

    def _template(self, url: str) -> str:
        engine = create_pay_engine(url)
        migrate(engine)
        self.simulator.simulator.reset(harness.SMALL)
        pipeline = make_pipeline(engine, self.simulator, self.instance, self.mp)
        assert pipeline.materialize(window=harness.WINDOW, assignar=harness.fast_assignar()).success
        engine.dispose()
        return url

    def pipeline(self, database: str) -> Pipeline:
        self.cases += 1
        self.simulator.simulator.reset(harness.SMALL)
        self.mp.setenv("DEMO_SECRET", "demo-secret-change-me")
        if database == "sqlite":
            path = self.root / f"case{self.cases}.db"
            shutil.copyfile(self.root / "template.db", path)
            engine = create_pay_engine(f"sqlite:///{path}")
        else:
            name = f"chaos_{self.cases}"
            conn = self.postgres.connect()
            try:
                conn.autocommit = True
                with conn.cursor() as cur:
                    cur.execute(f'CREATE DATABASE "{name}" TEMPLATE "chaos_template"')
            finally:
                conn.close()
            engine = create_pay_engine(self.postgres.url(name))
        return Pipeline(engine, self.simulator, 1, self.instance)


def kill_case(bench: Bench, database: str, rng: random.Random) -> harness.CaseRow:
    """A timesheets run killed at a random statement, then a clean run."""
    moment, sql, param, most = rng.choice(KILL_STATEMENTS)
    point = crash.KillPoint(f"kill at {sql}", sql, rng.randint(1, most), param)
    row = harness.CaseRow(f"SIGKILL {moment} #{point.nth}", "timesheets", database)
    pipeline = bench.pipeline(database)
    harness.edit_upstream(pipeline.simulator, "timesheets")
    harness.edit_loaded_timesheet(pipeline)
    before = harness.pay_checksums(pipeline.engine)
    env = {k: os.environ[k] for k in ("ASSIGNAR_API_URL", "ASSIGNAR_TOKEN_URL", "DEMO_SECRET")}
    process, _ = crash.start(env, pipeline.url, harness.ASSETS["timesheets"], harness.WINDOW, point)
    process.join(180)
    killed = process.exitcode == -signal.SIGKILL
    row.outcome = "killed, next run converged" if killed else "finished before the point"
    if not killed:
        row.problems.append(f"the run never reached {sql} #{point.nth}")
    middle = harness.pay_checksums(pipeline.engine)
    clean = pipeline.materialize(
        harness.ASSETS["timesheets"], window=harness.WINDOW, assignar=harness.fast_assignar()
    )
    final = harness.verdict(pipeline, pipeline.connection_id("demo"))
    after = harness.pay_checksums(pipeline.engine)
    row.rows_lost, row.duplicates = len(final.lost), len(final.duplicates)
    row.problems += final.lost + final.duplicates
    row.problems += [final.conservation] if final.conservation else []
    if not clean.success:
        row.problems.append("the clean run failed")
    for table in harness.PAY_TABLES["timesheets"]:
        if middle[table] not in (before[table], after[table]):
            row.problems.append(f"half a window in {table}")
    pipeline.engine.dispose()
    return row


def main() -> int:
    seed = int(os.environ.get("CHAOS_SEED") or time.time_ns() % 1_000_000)
    kills = int(os.environ.get("CHAOS_KILLS", "6"))
    rng = random.Random(seed)
    print(f"chaos seed {seed} (replay: CHAOS_SEED={seed} make chaos)", flush=True)
    cases = [
        (fault, entity, database)
        for fault in harness.FAULTS
        for entity in harness.ENTITIES
        for database in ("sqlite", "postgresql")
    ]
    rng.shuffle(cases)
    cases = cases[: int(os.environ.get("CHAOS_CASES", len(cases)))]
    rows: list[harness.CaseRow] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        bench = Bench(Path(tmp), stack)
        print(harness.HEADER, flush=True)
        for fault, entity, database in cases:
            pipeline = bench.pipeline(database)
            try:
                row = harness.run_case(pipeline, _vary(fault, rng), entity, bench.mp.setenv)
            except Exception as exc:  # a case that crashes is a finding, not the end of the pass
                row = harness.CaseRow(fault.name, entity, database, "crashed", problems=[repr(exc)])
            pipeline.engine.dispose()
            rows.append(row)
            print(
                row.line() + ("" if not row.problems else "   <-- " + row.problems[0]), flush=True
            )
        for _ in range(kills):
            row = kill_case(bench, rng.choice(["sqlite", "postgresql"]), rng)
            rows.append(row)
            print(
                row.line() + ("" if not row.problems else "   <-- " + row.problems[0]), flush=True
            )
    bad = [r for r in rows if r.problems or r.rows_lost or r.duplicates]
    print(
        f"\n{len(rows)} cases in {time.monotonic() - started:.0f} s, seed {seed}: "
        f"rows lost {sum(r.rows_lost for r in rows)}, duplicates "
        f"{sum(r.duplicates for r in rows)}, cases with problems {len(bad)}"
    )
    for row in bad:
        print(f"- {row.fault} / {row.entity} / {row.database}:", *row.problems[:5], sep="\n    ")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

"""The import's stages one at a time, on the benchmark's own tenant: where its time goes.

Each stage runs alone, in this process, over the same timesheets (the last `days` of the range
the full import read), through the core's public functions only, so the figures stay right when
their insides change:

- fetch + parse: `AssignarClient.iter_pages` with the pipeline's filters, fields, page size and
  7-day pieces, newest first (the fetch limit does the same with bare httpx and orjson);
- validation: `schemas.validate` in the pipeline's chunks, up to its staging frame (`.frame`);
- staging: `staging.stage_frame` of those frames into the empty staging table of a fresh Pay
  database, as the extract does;
- Pay load: `load.load_timesheets` per 7-day piece, one transaction each, as `sync.load_for`
  does, after the team's projects and workers were staged and linked (not timed).

One core does each stage; chained, a record costs the sum of the stages' times, so
`chained_rate` is what one process doing them one after another could reach. Validation and the
Pay load run once more under cProfile (not timed) on the same records: `Stage.profile` names the
functions that take their time.
"""

from __future__ import annotations

import cProfile
import pstats
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pandas as pd
from sqlalchemy.engine import Engine

from assignar_pipeline.client import AssignarClient
from assignar_pipeline.connections import ConnectionRequest, connect, named_connections
from assignar_pipeline.extract import (
    CHUNK_RECORDS,
    DAYS_PER_FETCH,
    FIELDS,
    PAGE_SIZE,
    RESOURCES,
    WINDOW_FIELDS,
    split_window,
)
from assignar_pipeline.load import OUTCOMES, load_projects, load_timesheets, load_workers
from assignar_pipeline.pay.database import migrate
from assignar_pipeline.pay.tables import timesheet, timesheet_line
from assignar_pipeline.regions import Endpoints
from assignar_pipeline.schemas import validate
from assignar_pipeline.staging import stage_frame
from bench.payteam import OWNER, bench_team
from bench.profile_summary import short_path

KEY = "stages"


@dataclass
class Stage:
    """One stage: records in, seconds taken."""

    records: int
    seconds: float
    note: str = ""
    profile: str = ""

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


def chained_rate(stages: dict[str, Stage]) -> float:
    """Records per second of the stages done one after another by one process."""
    per_record = sum(1 / s.rate for s in stages.values() if s.rate)
    return 1 / per_record if per_record else 0.0


def profiled(work: Callable[[], object], top: int = 5) -> str:
    """The functions with the most own time while `work` runs, with their share of it."""
    profiler = cProfile.Profile()
    profiler.runcall(work)
    stats = pstats.Stats(profiler)
    total = stats.total_tt or 1.0  # type: ignore[attr-defined]
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:top]  # type: ignore[attr-defined]
    return "; ".join(
        f"{name} ({short_path(path)}:{line}) {own / total:.0%}"
        for (path, line, name), (_, _, own, _, _) in rows
    )


def fetch_pages(client: AssignarClient, entity: str, window: tuple[date, date]) -> list[dict]:
    """Every record of `entity` in [start, end), fetched as extract fetches them."""
    records: list[dict] = []
    for piece in list(split_window(window, DAYS_PER_FETCH))[::-1]:
        filters = {f"{WINDOW_FIELDS[entity]}__between": [piece[0], piece[1] - timedelta(days=1)]}
        for page in client.iter_pages(
            RESOURCES[entity], filters=filters, fields=FIELDS.get(entity), page_size=PAGE_SIZE
        ):
            records.extend(page)
    return records


def validate_all(records: list[dict], zone: str) -> tuple[list[pd.DataFrame], int]:
    """The staging frame of each of the pipeline's chunks, and how many records were
    quarantined."""
    frames: list[pd.DataFrame] = []
    quarantined = 0
    for i in range(0, len(records), CHUNK_RECORDS):
        result = validate("timesheets", records[i : i + CHUNK_RECORDS], timezone=zone)
        frames.append(result.frame)
        quarantined += len(result.quarantined)
    return frames, quarantined


def snapshot(engine: Engine, client: AssignarClient, connection, entity: str) -> None:
    """Fetch, validate and stage a whole entity (projects, workers): what the load needs."""
    records = [
        r
        for page in client.iter_pages(
            RESOURCES[entity], fields=FIELDS.get(entity), page_size=PAGE_SIZE
        )
        for r in page
    ]
    frame = validate(entity, records, timezone=connection.timezone).frame
    with engine.begin() as conn:
        stage_frame(conn, entity, connection.id, frame, datetime.now(UTC))


def measure(engine: Engine, client: AssignarClient, endpoints: Endpoints, client_id: str,
            secret_env: str, zone: str, window: tuple[date, date]) -> dict[str, Stage]:  # fmt: skip
    """Each stage over the timesheets of `window` ([start, end)), into `engine`'s empty Pay
    database (migrated and given the bench team here)."""
    migrate(engine)
    team = bench_team(engine, client)
    connect(engine, ConnectionRequest(KEY, team, OWNER, "au", client_id, secret_env, zone),
            endpoints=endpoints)  # fmt: skip
    (connection,) = named_connections(engine, [KEY])
    stages: dict[str, Stage] = {}

    started = time.perf_counter()
    records = fetch_pages(client, "timesheets", window)
    stages["fetch + parse"] = Stage(len(records), time.perf_counter() - started)

    validate("timesheets", records[:10], timezone=zone)  # compile the schema: not timed
    started = time.perf_counter()
    frames, quarantined = validate_all(records, zone)
    stages["validation"] = Stage(
        len(records), time.perf_counter() - started, f"{quarantined} quarantined"
    )
    stages["validation"].profile = profiled(lambda: validate_all(records, zone))
    records = []  # free them before staging

    fetched_at = datetime.now(UTC)
    started = time.perf_counter()
    for frame in frames:
        with engine.begin() as conn:
            stage_frame(conn, "timesheets", connection.id, frame, fetched_at)
    stages["staging"] = Stage(sum(map(len, frames)), time.perf_counter() - started)

    for entity in ("projects", "workers"):
        snapshot(engine, client, connection, entity)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        projects = load_projects(conn, connection, now)
        workers = load_workers(conn, connection, now)
    started = time.perf_counter()
    loaded = held = 0
    for piece in split_window(window, DAYS_PER_FETCH):
        with engine.begin() as conn:
            counts = load_timesheets(conn, connection, datetime.now(UTC), piece)
        loaded += sum(getattr(counts, k) for k in OUTCOMES if k != "linked")
        held += counts.held
    stages["Pay load"] = Stage(
        loaded,
        time.perf_counter() - started,
        f"{held} held; projects {projects.held} held of {projects.linked + projects.held}, "
        f"workers {workers.held} held of {workers.linked + workers.held}",
    )
    with engine.begin() as conn:  # the same load again, from an empty Pay: profiled
        conn.execute(timesheet_line.delete())
        conn.execute(timesheet.delete())

    def load_again() -> None:
        for piece in split_window(window, DAYS_PER_FETCH):
            with engine.begin() as conn:
                load_timesheets(conn, connection, datetime.now(UTC), piece)

    stages["Pay load"].profile = profiled(load_again)
    return stages

"""Staging a validated frame: what is stored reads back as the rows, and newer wins.

Both engines: SQLite (one executemany of prepared values) and PostgreSQL (COPY and a merge).
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from assignar_pipeline.pay.tables import STAGING
from assignar_pipeline.schemas import validate
from assignar_pipeline.simulator import Simulator, TenantConfig
from assignar_pipeline.staging import stage_frame, stage_rows
from tests.support.sync import add_connection

TZ = "Australia/Sydney"
FETCHED = datetime(2026, 1, 5, 3, 0, 0, 123456, tzinfo=UTC)


def records(resource: str) -> list[dict[str, Any]]:
    sim = Simulator(TenantConfig(workers=20, projects=6, orders=40))
    return [json.loads(orjson.dumps(r), parse_float=Decimal) for r in sim.records(resource)]


def stored(engine: Engine, entity: str) -> dict[int, dict[str, Any]]:
    table = STAGING[entity]
    with engine.connect() as conn:
        return {r.assignar_id: dict(r._mapping) for r in conn.execute(sa.select(table))}


def test_rows_read_back_exactly_and_a_rerun_is_unchanged(pay_engine: Engine) -> None:
    connection_id = add_connection(pay_engine, "staging-frame")
    for entity, resource in (("timesheets", "timesheets-expanded"), ("orders", "orders")):
        chunk = records(resource)
        chunk[0]["job_description" if entity == "orders" else "status"] = 'a "quoted", \\N text'
        validated = validate(entity, chunk, timezone=TZ)
        assert not validated.quarantined
        with pay_engine.begin() as conn:
            counts = stage_frame(conn, entity, connection_id, validated.frame, FETCHED)
        assert (counts.inserted, counts.updated, counts.unchanged, counts.stale) == (
            len(chunk),
            0,
            0,
            0,
        )
        assert counts.dates == Counter(r["work_date"] for r in validated.rows)
        rows = stored(pay_engine, entity)
        for row in validated.rows:
            got = rows[row["assignar_id"]]
            assert {k: got[k] for k in row} == row
            assert got["connection_id"] == connection_id
            assert got["fetched_at"] == FETCHED
            assert got["voided_at"] is None
        with pay_engine.begin() as conn:
            again = stage_rows(conn, entity, connection_id, validated.rows, FETCHED)
        assert (again.inserted, again.updated, again.unchanged, again.stale) == (
            0,
            0,
            len(chunk),
            0,
        )
        assert again.dates == Counter()


def test_newer_wins_and_dates_count_both_sides_of_a_move(pay_engine: Engine) -> None:
    connection_id = add_connection(pay_engine, "staging-newer")
    chunk = records("timesheets-expanded")[:3]
    first = validate("timesheets", copy.deepcopy(chunk), timezone=TZ)
    with pay_engine.begin() as conn:
        stage_frame(conn, "timesheets", connection_id, first.frame, FETCHED)
    old_rows = {r["assignar_id"]: r for r in first.rows}

    newer, older, same = copy.deepcopy(chunk)
    moved_by = timedelta(days=1)
    for key in ("start_datetime", "end_datetime"):
        instant = datetime.fromisoformat(newer[key]) + moved_by
        newer[key] = instant.isoformat().replace("+00:00", "Z")
    for entry in newer["activity_entries"]:
        entry["start_at"] = newer["start_datetime"]
        entry["start_at_naive"] = None
    newer["submitted_date"] = None
    newer["modified_time"] = "2030-01-01T00:00:00.000Z"
    older["status"] = "CHANGED"
    older["modified_time"] = "2000-01-01T00:00:00.000Z"
    second = validate("timesheets", [newer, older, same], timezone=TZ)
    assert not second.quarantined
    with pay_engine.begin() as conn:
        counts = stage_frame(conn, "timesheets", connection_id, second.frame, FETCHED)
    assert (counts.inserted, counts.updated, counts.unchanged, counts.stale) == (0, 1, 1, 1)
    was = old_rows[newer["id"]]["work_date"]
    assert counts.dates == Counter({was: 1, was + moved_by: 1})
    rows = stored(pay_engine, "timesheets")
    assert rows[older["id"]]["status"] == old_rows[older["id"]]["status"]
    assert rows[newer["id"]]["work_date"] == was + moved_by
    assert isinstance(rows[newer["id"]]["work_date"], date)

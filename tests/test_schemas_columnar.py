"""The columnar clean path of `validate` gives what the per-record reader gives.

The screen (vectorised) takes the records it can vouch for; the reader takes the rest. These
tests pin that the two agree on valid records (rows, types, content hashes), that the screen
really takes the simulator's records, and that its hashes are `content_hash` of the row dict.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import orjson
import pytest

from assignar_pipeline.schemas import content_hash, validate
from assignar_pipeline.schemas import timesheets as timesheet_schema
from assignar_pipeline.schemas.validation import _SPECS, _validate_records, _zone
from assignar_pipeline.simulator import Simulator, TenantConfig

RESOURCE = {
    "projects": "projects",
    "workers": "users",
    "timesheets": "timesheets-expanded",
    "orders": "orders",
}
TZ = "Australia/Sydney"


@pytest.fixture(scope="module")
def demo() -> dict[str, list[dict[str, Any]]]:
    sim = Simulator(TenantConfig(workers=60, projects=12, orders=300))
    return {
        entity: [json.loads(orjson.dumps(r), parse_float=Decimal) for r in sim.records(res)]
        for entity, res in RESOURCE.items()
    }


def reader_rows(entity: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows by the per-record reader alone, hashed as rows always were."""
    rows, _, quarantined = _validate_records(_SPECS[entity], records, _zone(TZ), TZ)
    assert quarantined == []
    return [{**row, "content_hash": content_hash(row)} for row in rows]


@pytest.mark.parametrize("entity", list(RESOURCE))
def test_rows_and_hashes_match_the_reader(demo: dict[str, list[Any]], entity: str) -> None:
    records = demo[entity]
    rows = validate(entity, copy.deepcopy(records), timezone=TZ).rows
    expected = reader_rows(entity, copy.deepcopy(records))
    assert rows == expected
    for row, want in zip(rows, expected, strict=True):
        assert {k: type(v) for k, v in row.items()} == {k: type(v) for k, v in want.items()}


@pytest.mark.parametrize("entity", ["timesheets", "orders"])
def test_the_screen_takes_every_valid_simulator_record(
    demo: dict[str, list[Any]], entity: str
) -> None:
    ok, _ = _SPECS[entity].screen(demo[entity], TZ)
    assert ok.all()


def test_quantities_the_screen_cannot_vouch_for_get_the_readers_reasons(
    demo: dict[str, list[Any]],
) -> None:
    record = next(r for r in demo["orders"] if r["activities"])
    reasons = {}
    for value in (Decimal("NaN"), True, Decimal("1.005"), -1, "x", Decimal("-0")):
        changed = copy.deepcopy(record)
        changed["activities"][0]["quantity"] = value
        result = validate("orders", [changed], timezone=TZ)
        reasons[str(value)] = [q.reason for q in result.quarantined]
        if not result.quarantined:
            reader = reader_rows("orders", [copy.deepcopy(changed)])
            assert result.rows == reader
    assert reasons == {
        "NaN": ["activities[0].quantity: must be a finite number"],
        "True": ["activities[0].quantity: must be a number, not a boolean"],
        "1.005": ["activities[0].quantity: must have at most 2 decimal places"],
        "-1": ["activities[0].quantity: must be >= 0 and < 1,000,000,000,000"],
        "x": ["activities[0].quantity: must be a number"],
        "-0": [],
    }


def test_the_screen_leaves_unusual_shapes_to_the_reader(demo: dict[str, list[Any]]) -> None:
    """Shapes `fromisoformat` reads but the screen does not vouch for still validate, by the
    reader, into the same row the usual shape gives."""
    record = copy.deepcopy(demo["timesheets"][0])
    usual = validate("timesheets", [copy.deepcopy(record)], timezone=TZ).rows[0]
    start = datetime.fromisoformat(record["start_datetime"]).astimezone(UTC)
    record["start_datetime"] = start.astimezone(
        timezone(timedelta(hours=10))
    ).isoformat()  # "+10:00"
    ok, _ = timesheet_schema.screen([record], TZ)
    assert ok.all()
    record["start_datetime"] = start.strftime("%Y%m%dT%H%M%SZ")  # basic format
    ok, _ = timesheet_schema.screen([record], TZ)
    assert not ok.any()
    assert validate("timesheets", [record], timezone=TZ).rows == [usual]


def test_a_dst_night_is_checked_the_same_way(demo: dict[str, list[Any]]) -> None:
    """A Sydney shift across the October change: 8 hours by the clock, 7 in real time."""
    record = copy.deepcopy(demo["timesheets"][0])
    record["activity_entries"] = record["activity_entries"][:1]
    entry = record["activity_entries"][0]
    start = datetime(2025, 10, 4, 12, 0, tzinfo=UTC)  # 22:00 AEST on the 4th
    end = start + timedelta(hours=7)  # 06:00 AEDT on the 5th
    record.update(
        start_datetime=start.isoformat().replace("+00:00", ".000Z"),
        end_datetime=end.isoformat().replace("+00:00", ".000Z"),
        submitted_date="2025-10-04",
        start_time="22:00",
        end_time="06:00",
        total_time="08:00",
    )
    entry.update(
        start_at=record["start_datetime"],
        start_at_tz=TZ,
        start_at_naive="2025-10-04T22:00:00",
        duration=480,
    )
    ok, _ = timesheet_schema.screen([record], TZ)
    assert ok.all()
    assert validate("timesheets", [record], timezone=TZ).rows == reader_rows(
        "timesheets", [copy.deepcopy(record)]
    )
    record["total_time"] = "08:01"
    assert not timesheet_schema.screen([record], TZ)[0].any()
    assert validate("timesheets", [record], timezone=TZ).quarantined


#: Date-times the screen reads by itself (first) and ones it must leave to the reader (second):
#: the reader (`datetime.fromisoformat`) accepts some of these, refuses others.
SCREEN_READS = [
    "2025-08-19T22:00:00Z",
    "2025-08-19T22:00:00.326Z",
    "2025-08-19T22:00:00.5Z",
    "2025-08-19T22:00:00.123456Z",
    "2024-02-29T23:59:59.999999+10:00",
    "2025-08-19T22:00:00-00:00",
    "2025-08-19T22:00:00+05:45",
    "2025-08-19T08:00:00-09:30",
    "2025-08-19T22:00:00+23:59",
]
SCREEN_LEAVES = [
    "2025-02-29T22:00:00Z",  # no such day
    "2025-13-19T22:00:00Z",
    "2025-08-19T24:00:00Z",
    "2025-08-19T22:60:00Z",
    "2025-08-19T22:00:60Z",
    "2025-08-19T22:00:00+24:00",
    "2025-08-19T22:00:00+10:60",
    "2025-08-19T22:00:00.1234567Z",  # more than 6 fractional digits
    "2025-08-19T22:00:00.Z",
    "2025-08-19T22:00:00",  # no offset
    "2025-08-19T22:00:00z",
    "2025-08-19 22:00:00Z",
    "2025-08-19T22:00:00+1000",
    "2025-08-19T22:00:00Z\x00",
    "2025-08-19T22:00Z",
    "١٢٣٤-08-19T22:00:00Z",  # non-ASCII digits
]


def test_the_screen_reads_date_times_as_the_reader_does(demo: dict[str, list[Any]]) -> None:
    """Every date-time the screen vouches for gives the reader's row; any other shape still gets
    the reader's row or the reader's reason."""
    base = demo["timesheets"][0]
    for text in SCREEN_READS + SCREEN_LEAVES:
        record = copy.deepcopy(base)
        record["modified_time"] = text
        ok, _ = timesheet_schema.screen([copy.deepcopy(record)], TZ)
        assert bool(ok[0]) == (text in SCREEN_READS), text
        result = validate("timesheets", [copy.deepcopy(record)], timezone=TZ)
        rows, _, quarantined = _validate_records(
            _SPECS["timesheets"], [copy.deepcopy(record)], _zone(TZ), TZ
        )
        assert [q.reason for q in result.quarantined] == [q.reason for q in quarantined], text
        expected = [{**row, "content_hash": content_hash(row)} for row in rows]
        assert result.rows == expected, text
        if text in SCREEN_READS:
            want = datetime.fromisoformat(text).astimezone(UTC)
            assert result.rows[0]["modified_time"] == want

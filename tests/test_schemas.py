"""Validation of Assignar records into staging rows: demo data, every kind of bad value, hashes."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assignar_pipeline.pay.tables import STAGING, metadata
from assignar_pipeline.pay.types import UtcDateTime
from assignar_pipeline.schemas import Quarantined, Validated, validate
from assignar_pipeline.simulator import Simulator, TenantConfig

Record = dict[str, Any]
RESOURCE = {
    "projects": "projects",
    "workers": "users",
    "timesheets": "timesheets-expanded",
    "orders": "orders",
}
ENTITIES = tuple(RESOURCE)
TZ = "Australia/Sydney"
NOT_ROW_COLUMNS = {"connection_id", "fetched_at", "voided_at"}


def delivered(records: list[Record]) -> list[Record]:
    """Records as the client hands them over: JSON text parsed with Decimal for fractions."""
    return [json.loads(orjson.dumps(r), parse_float=Decimal) for r in records]


@pytest.fixture(scope="module")
def demo() -> dict[str, list[Record]]:
    sim = Simulator(TenantConfig())
    return {entity: delivered(sim.records(res)) for entity, res in RESOURCE.items()}


def fresh(demo: dict[str, list[Record]], entity: str, n: int | None = None) -> list[Record]:
    """A deep copy of the first `n` demo records of an entity (tests mutate them)."""
    return copy.deepcopy(demo[entity][:n])


def by_id(rows: list[dict[str, Any]], assignar_id: int) -> dict[str, Any]:
    return next(r for r in rows if r["assignar_id"] == assignar_id)


def assert_row_types(entity: str, row: dict[str, Any]) -> None:
    """Every value fits its staging column: Python type, nullability and length."""
    table = STAGING[entity]
    expected = {c.name for c in table.columns} - NOT_ROW_COLUMNS
    assert set(row) == expected
    for column in table.columns:
        if column.name in NOT_ROW_COLUMNS:
            continue
        value = row[column.name]
        where = f"{entity}.{column.name}={value!r}"
        if value is None:
            assert column.nullable, where
            continue
        kind = column.type
        if isinstance(kind, sa.Integer):  # BigInteger too
            assert type(value) is int, where
            assert -(2**63) <= value < 2**63, where
        elif isinstance(kind, UtcDateTime):
            assert type(value) is datetime and value.utcoffset() == timedelta(0), where
        elif isinstance(kind, sa.Date):
            assert type(value) is date, where
        elif isinstance(kind, sa.Boolean):
            assert type(value) is bool, where
        elif isinstance(kind, sa.String):  # Text too
            assert type(value) is str, where
            assert kind.length is None or len(value) <= kind.length, where
        elif isinstance(kind, sa.JSON):
            assert type(value) is list, where
            json.dumps(value, allow_nan=False)  # no Decimal, no NaN
        else:
            raise AssertionError(f"untested column type {kind!r} for {where}")
    assert len(row["content_hash"]) == 64 and int(row["content_hash"], 16) >= 0


# --------------------------------------------------------------------------- valid demo data


@pytest.mark.parametrize("entity", ENTITIES)
def test_every_demo_record_becomes_a_typed_row(demo: dict[str, list[Record]], entity: str) -> None:
    """Every simulator record of every entity validates into a row whose values fit the table."""
    records = fresh(demo, entity)
    result = validate(entity, records, timezone=TZ)
    assert result.quarantined == []
    assert [r["assignar_id"] for r in result.rows] == [r["id"] for r in records]
    for row in result.rows:
        assert_row_types(entity, row)


@pytest.mark.parametrize("entity", ENTITIES)
def test_rows_insert_into_the_staging_table(demo: dict[str, list[Record]], entity: str) -> None:
    """Rows insert as they are into the SQLAlchemy staging table and read back equal."""
    engine = sa.create_engine("sqlite://")
    metadata.create_all(engine)
    table = STAGING[entity]
    rows = validate(entity, fresh(demo, entity, 200), timezone=TZ).rows
    fetched_at = datetime(2025, 11, 14, 7, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            table.insert(), [{**r, "connection_id": 1, "fetched_at": fetched_at} for r in rows]
        )
        stored = conn.execute(sa.select(table).order_by(table.c.assignar_id)).mappings().all()
    assert len(stored) == len(rows)
    for row, back in zip(sorted(rows, key=lambda r: r["assignar_id"]), stored, strict=True):
        assert {k: back[k] for k in row} == row


def test_known_project(demo: dict[str, list[Record]]) -> None:
    """A project maps code, client and parent; a sub-project points at its parent."""
    rows = validate("projects", fresh(demo, "projects"), timezone=TZ).rows
    assert {k: v for k, v in by_id(rows, 201).items() if k != "content_hash"} == {
        "assignar_id": 201,
        "name": "Westfield Parramatta Stage 2",
        "code": "PRJ-0001",
        "client_assignar_id": 51,
        "client_name": "Lendlease",
        "client_code": "CLI-001",
        "parent_assignar_id": None,
        "active": True,
        "modified_time": datetime(2025, 7, 18, 4, 53, 55, 194000, tzinfo=UTC),
    }
    assert by_id(rows, 206)["parent_assignar_id"] == 205


def test_known_workers(demo: dict[str, list[Record]]) -> None:
    """A worker maps names, dob and type; a blank employee id is None; emails keep their case."""
    rows = validate("workers", fresh(demo, "workers"), timezone=TZ).rows
    priya = by_id(rows, 1001)
    assert (priya["employee_id"], priya["first_name"], priya["last_name"]) == (
        "OFF-1001",
        "Priya",
        "Raman",
    )
    assert priya["email"] == "priya.raman@example.com"
    assert priya["dob"] == date(2002, 4, 10)
    assert priya["employment_type"] == 1
    assert priya["active"] is True
    assert by_id(rows, 1009)["employee_id"] is None
    assert by_id(rows, 1012)["email"] == "KAI.KOWALSKI@EXAMPLE.COM"


def test_known_timesheets(demo: dict[str, list[Record]]) -> None:
    """Timesheets get the local start date, UTC instants, the entry zone, minutes and lines."""
    rows = validate("timesheets", fresh(demo, "timesheets"), timezone="UTC").rows
    denver = by_id(rows, 500002)
    assert {k: v for k, v in denver.items() if k != "content_hash"} == {
        "assignar_id": 500002,
        "work_date": date(2025, 8, 17),
        "user_assignar_id": 1020,
        "project_assignar_id": 204,
        "task_assignar_id": 4,
        "order_assignar_id": None,
        "start_at": datetime(2025, 8, 17, 12, 30, tzinfo=UTC),
        "end_at": datetime(2025, 8, 17, 18, 30, tzinfo=UTC),
        "timezone": "America/Denver",
        "total_minutes": 330,
        "status": "APPROVED_WITH_PAY_AND_CHARGE_RATES",
        "processed": False,
        "lines": [
            {"ref": 9000003, "cost_code": "ACT-130", "minutes": 165},
            {"ref": 9000004, "cost_code": "ACT-130", "minutes": 165},
        ],
        "modified_time": datetime(2025, 8, 20, 6, 35, 0, 274000, tzinfo=UTC),
    }
    # Sydney morning shift: the UTC date is the day before the local one.
    sydney = by_id(rows, 500003)
    assert sydney["start_at"] == datetime(2025, 8, 16, 20, 30, tzinfo=UTC)
    assert (sydney["work_date"], sydney["timezone"]) == (date(2025, 8, 17), "Australia/Sydney")
    # Denver night shift: starts 22:00 on the 18th, the UTC start is on the 19th.
    night = by_id(rows, 500008)
    assert night["start_at"] == datetime(2025, 8, 19, 4, tzinfo=UTC)
    assert night["work_date"] == date(2025, 8, 18)
    assert night["total_minutes"] == 480
    processed = by_id(rows, 500001)
    assert processed["processed"] is True


def test_known_orders(demo: dict[str, list[Record]]) -> None:
    """Orders map dates, numbers and lines; quantities are 2-decimal strings or None."""
    rows = validate("orders", fresh(demo, "orders"), timezone=TZ).rows
    first = by_id(rows, 30001)
    assert {k: v for k, v in first.items() if k != "content_hash"} == {
        "assignar_id": 30001,
        "work_date": date(2025, 8, 18),
        "end_date": date(2025, 8, 25),
        "job_number": "JOB-30001",
        "po_number": "PO-39932",
        "project_assignar_id": 201,
        "client_assignar_id": 51,
        "status_id": 3,
        "description": "6 x Excavator Operator - Westfield Parramatta Stage 2",
        "active": True,
        "lines": [
            {
                "cost_code": "ACT-100",
                "description": "Site Preparation",
                "quantity": "51.00",
                "unit": "HR",
            }
        ],
        "modified_time": datetime(2025, 8, 26, 19, 6, 0, 712000, tzinfo=UTC),
    }
    assert [line["quantity"] for line in by_id(rows, 30002)["lines"]] == [None]
    assert by_id(rows, 30006)["po_number"] is None
    assert [line["quantity"] for line in by_id(rows, 30006)["lines"]] == ["25.00"]


def test_timesheet_without_entries_uses_the_connection_zone(demo: dict[str, list[Record]]) -> None:
    """With no activity entries the connection's zone decides the work date and is recorded."""
    rec = next(r for r in fresh(demo, "timesheets") if r["id"] == 500003)  # Sydney, 06:30
    rec["activity_entries"] = []
    result = validate("timesheets", [rec], timezone="Australia/Sydney")
    assert result.rows[0]["work_date"] == date(2025, 8, 17)
    assert result.rows[0]["timezone"] == "Australia/Sydney"
    assert result.rows[0]["lines"] == []


def test_wrong_fallback_zone_quarantines_rather_than_guessing(
    demo: dict[str, list[Record]],
) -> None:
    """If the connection's zone puts the start on another day than submitted_date, quarantine."""
    rec = next(r for r in fresh(demo, "timesheets") if r["id"] == 500003)  # Sydney, 06:30
    rec["activity_entries"] = []
    result = validate("timesheets", [rec], timezone="America/Denver")
    assert result.rows == []
    assert (
        "submitted_date: must be the local date of start_datetime" in result.quarantined[0].reason
    )
    assert "start_time: must be the local time of start_datetime" in result.quarantined[0].reason


def test_empty_chunk() -> None:
    """An empty chunk gives nothing and nothing quarantined."""
    assert validate("timesheets", [], timezone=TZ) == Validated(rows=[], quarantined=[])


def test_caller_errors_raise() -> None:
    """An unknown time zone or entity is the caller's error and raises ValueError."""
    with pytest.raises(ValueError, match="time zone"):
        validate("timesheets", [], timezone="Mars/Olympus_Mons")
    with pytest.raises(ValueError, match="entity"):
        validate("payslips", [], timezone=TZ)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- bad values

Mutation = Callable[[Record], None]


def setter(path: str, value: Any) -> Mutation:
    """Set a dotted path ("activity_entries.0.duration"); `DELETE` removes the key."""

    def mutate(rec: Record) -> None:
        *parents, last = path.split(".")
        target: Any = rec
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if value is DELETE:
            del target[last]
        elif isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value

    return mutate


DELETE = object()


def shift_end(minutes: int) -> Mutation:
    def mutate(rec: Record) -> None:
        start = datetime.fromisoformat(rec["start_datetime"])
        rec["end_datetime"] = (start + timedelta(minutes=minutes)).isoformat()

    return mutate


def both(*mutations: Mutation) -> Mutation:
    def mutate(rec: Record) -> None:
        for m in mutations:
            m(rec)

    return mutate


def no_entries(rec: Record) -> None:
    rec["activity_entries"] = []


BAD: list[tuple[str, Mutation, str]] = [
    # ids and required fields
    ("timesheets", setter("id", "abc"), "id: must be an integer, not a string"),
    ("timesheets", setter("id", True), "id: must be an integer, not a boolean"),
    ("timesheets", setter("id", Decimal("5.5")), "id: must be an integer, not a number"),
    ("timesheets", setter("id", 0), "id: must be a positive integer"),
    ("timesheets", setter("id", 2**64), "id: is out of range"),
    ("timesheets", setter("user_id", None), "user_id: must not be null"),
    ("timesheets", setter("user_id", DELETE), "user_id: is missing"),
    ("timesheets", setter("project_id", -3), "project_id: must be a positive integer"),
    ("timesheets", setter("order_id", "30001"), "order_id: must be an integer, not a string"),
    # instants
    ("timesheets", setter("modified_time", "not-a-date"), "modified_time: must be an ISO 8601"),
    (
        "timesheets",
        setter("modified_time", 1700000000),
        "modified_time: must be an ISO 8601 date-time string",
    ),
    (
        "timesheets",
        setter("start_datetime", "2025-08-17T12:30:00"),
        "start_datetime: must carry a UTC offset",
    ),
    ("timesheets", setter("start_datetime", None), "start_datetime: must not be null"),
    (
        "timesheets",
        both(
            setter("start_datetime", "9999-12-31T20:00:00.000Z"),
            setter("end_datetime", "9999-12-31T23:00:00.000Z"),
        ),
        "start_datetime: must be between 1990-01-01 and 2100-12-31",
    ),
    (
        "timesheets",
        setter("processed_at", "yesterday"),
        "processed_at: must be an ISO 8601 date-time",
    ),
    (
        "timesheets",
        setter("modified_time", "1989-12-31T23:59:59Z"),
        "modified_time: must be between 1990-01-01",
    ),
    # shift arithmetic
    ("timesheets", shift_end(-60), "end_datetime: must be after start_datetime"),
    ("timesheets", shift_end(0), "end_datetime: must be after start_datetime"),
    (
        "timesheets",
        both(no_entries, shift_end(25 * 60)),
        "end_datetime: must be at most 24 hours after",
    ),
    ("timesheets", setter("total_time", 480), "total_time: must be an HH:MM string, not a number"),
    ("timesheets", setter("total_time", "8h"), "total_time: must be HH:MM"),
    ("timesheets", setter("total_time", "-1:00"), "total_time: must be HH:MM"),
    ("timesheets", setter("total_time", "25:00"), "total_time: must be between 0 and 1440 minutes"),
    ("timesheets", setter("total_time", "23:00"), "total_time: must not exceed the time between"),
    (
        "timesheets",
        setter("activity_entries.0.duration", -5),
        "activity_entries[0].duration: must be between 0 and 1440",
    ),
    (
        "timesheets",
        setter("activity_entries.0.duration", "165"),
        "activity_entries[0].duration: must be an integer",
    ),
    (
        "timesheets",
        setter("activity_entries.0.duration", 1400),
        "activity_entries: durations must not add up",
    ),
    (
        "timesheets",
        setter("activity_entries.0.id", None),
        "activity_entries[0].id: must not be null",
    ),
    # time zones and local times
    (
        "timesheets",
        setter("activity_entries.0.start_at_tz", "Mars/Olympus_Mons"),
        "activity_entries[0].start_at_tz: must be an IANA time zone name",
    ),
    (
        "timesheets",
        setter("activity_entries.0.start_at_tz", "../../etc/passwd"),
        "activity_entries[0].start_at_tz: must be an IANA",
    ),
    (
        "timesheets",
        setter("activity_entries.0.start_at_naive", "2025-08-17T07:31:00"),
        "activity_entries[0].start_at_naive: must be start_at as local time",
    ),
    (
        "timesheets",
        setter("activity_entries.0.start_at_naive", "noon"),
        "activity_entries[0].start_at_naive: must be an ISO 8601 local date-time",
    ),
    (
        "timesheets",
        setter("submitted_date", "2025-08-16"),
        "submitted_date: must be the local date of start_datetime",
    ),
    (
        "timesheets",
        setter("submitted_date", "2025-02-30"),
        "submitted_date: must be a YYYY-MM-DD date",
    ),
    (
        "timesheets",
        setter("start_time", "11:00"),
        "start_time: must be the local time of start_datetime",
    ),
    ("timesheets", setter("end_time", "24:00"), "end_time: must be HH:MM"),
    # text
    ("timesheets", setter("status", ""), "status: must not be blank"),
    ("timesheets", setter("status", "APPROVED\x07"), "status: must not contain control characters"),
    ("timesheets", setter("status", "A" * 61), "status: must be at most 60 characters"),
    ("timesheets", setter("status", 3), "status: must be a string, not a number"),
    (
        "timesheets",
        setter("activity_entries.0.activity.external_id", "X" * 101),
        "activity_entries[0].activity.external_id: must be at most 100 characters",
    ),
    (
        "timesheets",
        setter("activity_entries.0.activity", "ACT-1"),
        "activity_entries[0].activity: must be an object, not a string",
    ),
    (
        "timesheets",
        setter("activity_entries", {"id": 1}),
        "activity_entries: must be an array, not an object",
    ),
    (
        "timesheets",
        setter("activity_entries.0", 7),
        "activity_entries[0]: must be an object, not a number",
    ),
    # workers
    ("workers", setter("first_name", "  "), "first_name: must not be blank"),
    ("workers", setter("first_name", None), "first_name: must not be null"),
    (
        "workers",
        setter("last_name", "Smith\u0085"),
        "last_name: must not contain control characters",
    ),
    (
        "workers",
        setter("last_name", "O\ud800Brien"),
        "last_name: must not contain control characters",
    ),
    (
        "workers",
        setter("email", "a" * 310 + "@example.com"),
        "email: must be at most 320 characters",
    ),
    ("workers", setter("employee_id", 10042), "employee_id: must be a string, not a number"),
    ("workers", setter("dob", "1850-01-01"), "dob: must be between 1900-01-01 and 2100-12-31"),
    ("workers", setter("dob", "10/04/2002"), "dob: must be a YYYY-MM-DD date"),
    ("workers", setter("employment_type", 2**40), "employment_type: must be at most 2147483647"),
    ("workers", setter("active", "yes"), "active: must be true or false, not a string"),
    ("workers", setter("active", 1), "active: must be true or false, not a number"),
    # projects
    ("projects", setter("name", "N" * 301), "name: must be at most 300 characters"),
    ("projects", setter("name", DELETE), "name: is missing"),
    ("projects", setter("external_id", 2024), "external_id: must be a string, not a number"),
    (
        "projects",
        setter("external_id", "PRJ\n0001"),
        "external_id: must not contain control characters",
    ),
    ("projects", setter("client", "Lendlease"), "client: must be an object, not a string"),
    ("projects", setter("client.id", 999), "client.id: must equal client_id"),
    ("projects", setter("client.name", "C" * 301), "client.name: must be at most 300 characters"),
    (
        "projects",
        lambda r: r.update(parent_id=r["id"]),
        "parent_id: must not be the project itself",
    ),
    ("projects", setter("active", None), "active: must not be null"),
    # orders
    ("orders", setter("end_date", "2025-08-01"), "end_date: must not be before start_date"),
    ("orders", setter("start_date", "not-a-date"), "start_date: must be a YYYY-MM-DD date"),
    (
        "orders",
        setter("start_date", "1980-01-01"),
        "start_date: must be between 1990-01-01 and 2100-12-31",
    ),
    ("orders", setter("job_number", 30001), "job_number: must be a string, not a number"),
    ("orders", setter("status_id", "2"), "status_id: must be an integer, not a string"),
    ("orders", setter("status_id", DELETE), "status_id: is missing"),
    (
        "orders",
        setter("job_description", "pour\x00slab"),
        "job_description: must not contain control characters",
    ),
    (
        "orders",
        setter("activities.0.quantity", Decimal("-1")),
        "activities[0].quantity: must be >= 0",
    ),
    (
        "orders",
        setter("activities.0.quantity", Decimal("1.234")),
        "activities[0].quantity: must have at most 2 decimal places",
    ),
    (
        "orders",
        setter("activities.0.quantity", Decimal("NaN")),
        "activities[0].quantity: must be a finite number",
    ),
    (
        "orders",
        setter("activities.0.quantity", Decimal("-Infinity")),
        "activities[0].quantity: must be a finite number",
    ),
    (
        "orders",
        setter("activities.0.quantity", Decimal("1E+20")),
        "activities[0].quantity: must be >= 0 and <",
    ),
    (
        "orders",
        setter("activities.0.quantity", Decimal("1E+400")),
        "activities[0].quantity: must be >= 0 and <",
    ),
    (
        "orders",
        setter("activities.0.quantity", Decimal("1E-400")),
        "activities[0].quantity: must have at most 2 decimal places",
    ),
    ("orders", setter("activities.0.quantity", "lots"), "activities[0].quantity: must be a number"),
    (
        "orders",
        setter("activities.0.quantity", True),
        "activities[0].quantity: must be a number, not a boolean",
    ),
    (
        "orders",
        setter("activities.0.uom_code", "U" * 21),
        "activities[0].uom_code: must be at most 20 characters",
    ),
    ("orders", setter("activities", "none"), "activities: must be an array, not a string"),
]


@pytest.mark.parametrize(
    ("entity", "mutate", "reason"),
    BAD,
    ids=[f"{e}-{reason.split(':')[0]}-{i}" for i, (e, _, reason) in enumerate(BAD)],
)
def test_bad_value_is_quarantined_with_its_reason(
    demo: dict[str, list[Record]], entity: str, mutate: Mutation, reason: str
) -> None:
    """One bad value quarantines its record with a reason naming the field; the rest stay valid."""
    records = fresh(demo, entity, 7)
    mutate(records[3])
    raw = copy.deepcopy(records[3])
    result = validate(entity, records, timezone=TZ)
    assert [r["assignar_id"] for r in result.rows] == [
        r["id"] for i, r in enumerate(records) if i != 3
    ]
    [q] = result.quarantined
    assert reason in q.reason, q.reason
    assert q.assignar_id == (None if raw.get("id") is None else str(raw["id"])[:40])
    assert q.record == json.loads(json.dumps(raw, default=str))
    json.dumps(q.record, allow_nan=False)


def test_huge_entry_durations_stay_one_records_problem(demo: dict[str, list[Record]]) -> None:
    """Durations whose sum would overflow 64 bits are reported on that record alone."""
    records = fresh(demo, "timesheets", 4)
    entries = records[2]["activity_entries"]
    assert len(entries) == 2
    for entry in entries:
        entry["duration"] = 2**62
    result = validate("timesheets", records, timezone=TZ)
    assert len(result.rows) == 3
    [q] = result.quarantined
    assert q.reason == (
        "activity_entries[0].duration: must be between 0 and 1440 minutes; "
        "activity_entries[1].duration: must be between 0 and 1440 minutes"
    )


def test_dst_night_total_may_count_by_the_clock(demo: dict[str, list[Record]]) -> None:
    """On the spring-forward night a total by the clock (8 h wall, 7 h real) is accepted."""
    [rec] = [copy.deepcopy(r) for r in demo["timesheets"] if r["id"] == 500806]
    assert (rec["start_time"], rec["end_time"], rec["total_time"]) == ("22:00", "06:00", "06:30")
    rows = validate("timesheets", [rec], timezone=TZ).rows
    assert rows[0]["end_at"] - rows[0]["start_at"] == timedelta(hours=7)
    assert rows[0]["work_date"] == date(2025, 10, 4)
    rec["total_time"] = "07:30"  # 8 h by the clock less the 30 min break
    assert validate("timesheets", [rec], timezone=TZ).rows[0]["total_minutes"] == 450
    rec["total_time"] = "08:30"
    [q] = validate("timesheets", [rec], timezone=TZ).quarantined
    assert (
        q.reason == "total_time: must not exceed the time between start_datetime and end_datetime"
    )


def test_description_may_span_lines(demo: dict[str, list[Record]]) -> None:
    """Tabs and newlines are allowed in an order's description (free text), kept as given."""
    [rec] = fresh(demo, "orders", 1)
    rec["job_description"] = "Line one\n\tline two\r\n"
    assert (
        validate("orders", [rec], timezone=TZ).rows[0]["description"] == "Line one\n\tline two\r\n"
    )


def test_quantity_may_arrive_as_text_or_integer(demo: dict[str, list[Record]]) -> None:
    """A numeric string or a JSON integer is a quantity too, written with 2 decimals."""
    records = fresh(demo, "orders", 2)
    records[0]["activities"][0]["quantity"] = "12.5"
    records[1]["activities"][0]["quantity"] = 7
    rows = validate("orders", records, timezone=TZ).rows
    assert [row["lines"][0]["quantity"] for row in rows] == ["12.50", "7.00"]


def test_naive_entry_must_name_one_instant(demo: dict[str, list[Record]]) -> None:
    """A wall-time-only entry is fine on a normal night, quarantined in a DST gap or overlap."""
    sydney = [r for r in demo["timesheets"] if r["activity_entries"][0]["start_at_tz"] == TZ]
    records = copy.deepcopy(sydney[:3])
    for rec in records:
        rec["activity_entries"] = rec["activity_entries"][:1]
        rec["activity_entries"][0]["is_naive_datetime"] = True
    records[1]["activity_entries"][0]["start_at_naive"] = "2025-10-05T02:30:00"  # skipped
    records[2]["activity_entries"][0]["start_at_naive"] = "2025-04-06T02:30:00"  # repeated
    result = validate("timesheets", records, timezone=TZ)
    assert [r["assignar_id"] for r in result.rows] == [records[0]["id"]]
    assert [q.assignar_id for q in result.quarantined] == [
        str(records[1]["id"]),
        str(records[2]["id"]),
    ]
    for q in result.quarantined:
        assert (
            "activity_entries[0].start_at_naive: must be a local time that occurs exactly once"
            in q.reason
        )


def test_not_an_object_and_no_id(demo: dict[str, list[Record]]) -> None:
    """A record that is not an object, or has no id, is quarantined with assignar_id None."""
    records: list[Any] = [*fresh(demo, "workers", 2), ["a", "list"], None, {"first_name": "No id"}]
    result = validate("workers", records, timezone=TZ)
    assert len(result.rows) == 2
    assert [(q.assignar_id, q.reason.split(";")[0]) for q in result.quarantined] == [
        (None, "record: must be a JSON object, not an array"),
        (None, "record: must be a JSON object, not null"),
        (None, "id: is missing"),
    ]
    assert result.quarantined[0].record == ["a", "list"]


def test_simulator_malformed_record_names_every_field(demo: dict[str, list[Record]]) -> None:
    """The simulator's malformed_record fault (text id, bad date, number for text) is all named."""
    records = fresh(demo, "timesheets", 5)
    bad = records[2]
    bad["id"], bad["modified_time"], bad["total_time"] = f"id-{bad['id']}", "not-a-date", 480
    result = validate("timesheets", records, timezone=TZ)
    assert len(result.rows) == 4
    [q] = result.quarantined
    assert q.assignar_id == bad["id"]
    assert q.reason == (
        "id: must be an integer, not a string; modified_time: must be an ISO 8601 date-time; "
        "total_time: must be an HH:MM string, not a number"
    )


def test_each_bad_record_keeps_its_own_reasons(demo: dict[str, list[Record]]) -> None:
    """Several bad records in one chunk are each quarantined with their own, complete reasons."""
    records = fresh(demo, "timesheets", 10)
    records[1]["status"] = ""
    records[1]["user_id"] = "me"
    shift_end(-30)(records[4])
    records[8]["activity_entries"][0]["start_at_tz"] = "Nowhere/Land"
    result = validate("timesheets", records, timezone=TZ)
    assert len(result.rows) == 7
    reasons = {q.assignar_id: q.reason for q in result.quarantined}
    assert (
        reasons[str(records[1]["id"])]
        == "user_id: must be an integer, not a string; status: must not be blank"
    )
    assert "end_datetime: must be after start_datetime" in reasons[str(records[4]["id"])]
    assert "start_at_tz" not in reasons[str(records[4]["id"])]
    assert (
        reasons[str(records[8]["id"])]
        == "activity_entries[0].start_at_tz: must be an IANA time zone name"
    )


def test_duplicate_ids_quarantine_every_copy(demo: dict[str, list[Record]]) -> None:
    """Two records with one id in a chunk are both quarantined; the others are unaffected."""
    records = fresh(demo, "orders", 6)
    records[4] = copy.deepcopy(records[1])
    result = validate("orders", records, timezone=TZ)
    assert [r["assignar_id"] for r in result.rows] == [records[i]["id"] for i in (0, 2, 3, 5)]
    assert [(q.assignar_id, q.reason) for q in result.quarantined] == [
        (str(records[1]["id"]), "id: duplicate id in one response"),
        (str(records[1]["id"]), "id: duplicate id in one response"),
    ]


def test_quarantined_record_is_a_json_copy_and_input_is_untouched(
    demo: dict[str, list[Record]],
) -> None:
    """The quarantined record is JSON-safe (Decimal as text); validate never mutates its input."""
    records = fresh(demo, "orders", 3)
    records[1]["activities"][0]["quantity"] = Decimal("Infinity")
    records[1]["geolocation"]["coordinates"][0] = Decimal("-33.808051")
    before = copy.deepcopy(records)
    result = validate("orders", records, timezone=TZ)
    assert records == before
    [q] = result.quarantined
    assert isinstance(q, Quarantined)
    assert q.record["activities"][0]["quantity"] == "Infinity"
    assert q.record["geolocation"]["coordinates"][0] == "-33.808051"
    assert q.record["job_number"] == records[1]["job_number"]
    json.dumps(q.record, allow_nan=False)


# --------------------------------------------------------------------------- content hash


def test_content_hash_is_stable_and_order_independent(demo: dict[str, list[Record]]) -> None:
    """The same record hashes the same across calls and whatever the order of its keys."""
    records = fresh(demo, "timesheets", 20)
    reordered = [dict(reversed(list(r.items()))) for r in records]
    first = validate("timesheets", records, timezone=TZ).rows
    again = validate("timesheets", reordered, timezone=TZ).rows
    assert [r["content_hash"] for r in first] == [r["content_hash"] for r in again]
    assert len({r["content_hash"] for r in first}) == len(first)


def test_content_hash_is_stable_across_processes(demo: dict[str, list[Record]]) -> None:
    """A fresh interpreter with another hash seed computes the same content hashes."""
    records = fresh(demo, "orders", 5)
    here = [r["content_hash"] for r in validate("orders", records, timezone=TZ).rows]
    script = (
        "import json, sys\nfrom decimal import Decimal\n"
        "from assignar_pipeline.schemas import validate\n"
        "records = json.loads(sys.stdin.read(), parse_float=Decimal)\n"
        "rows = validate('orders', records, timezone='UTC').rows\n"
        "print(json.dumps([r['content_hash'] for r in rows]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=orjson.dumps(records, default=float).decode(),
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
    )
    assert json.loads(done.stdout) == here


@pytest.mark.parametrize(
    ("entity", "mutate"),
    [
        ("timesheets", setter("modified_time", "2025-08-20T06:35:00.275Z")),
        ("timesheets", setter("status", "APPROVED")),
        ("timesheets", setter("activity_entries.0.activity.external_id", "ACT-999")),
        ("orders", setter("activities.0.quantity", Decimal("52"))),
        ("workers", setter("email", "someone.else@example.com")),
        ("projects", setter("name", "Renamed")),
    ],
)
def test_content_hash_changes_with_an_upstream_edit(
    demo: dict[str, list[Record]], entity: str, mutate: Mutation
) -> None:
    """Any edit that changes a staged value, the modified time included, changes the hash."""
    records = fresh(demo, entity, 3)
    before = validate(entity, records, timezone=TZ).rows
    mutate(records[1])
    after = validate(entity, records, timezone=TZ).rows
    assert before[0]["content_hash"] == after[0]["content_hash"]
    assert before[1]["content_hash"] != after[1]["content_hash"]


# --------------------------------------------------------------------------- property


# Values that break types, ranges, parsers and arithmetic. The hand-picked ones are drawn as
# often as all the generated kinds together: they are where the bugs live.
NASTY = [
    None,
    True,
    0,
    -1,
    1441,
    2**31,
    2**62,
    2**63,
    -(2**63),
    Decimal("NaN"),
    Decimal("Infinity"),
    Decimal("-Infinity"),
    Decimal("sNaN"),
    Decimal("1E+400"),
    Decimal("1E-400"),
    Decimal("-0.001"),
    Decimal("3.14159"),
    Decimal("12.50"),
    float("nan"),
    float("inf"),
    1.5,
    "",
    "   ",
    "x" * 20_000,
    "a\x00b",
    "tab\there",
    "\ud800",
    "\u2028",
    "9999-12-31T23:59:59.999Z",
    "9999-12-31T23:59:59-12:00",
    "0001-01-01T00:00:00+14:00",
    "1990-01-01T00:00:00+14:00",
    "2100-12-31T23:59:59-12:00",
    "2025-08-17T12:30:00",
    "2025-08-17T12:30:00.000+25:00",
    "9999-12-31",
    "2025-02-29",
    "not-a-date",
    "99:99",
    "24:00",
    "-01:00",
    "08:00",
    "9999:59",
    "٠٨:٣٠",
    "Mars/Olympus_Mons",
    "../../etc/passwd",
    "America/Denver",
    "12.5",
    [],
    {},
]
BAD_VALUES = st.one_of(
    st.sampled_from(NASTY),
    st.one_of(
        st.integers(min_value=-(2**70), max_value=2**70),
        st.decimals(allow_nan=True, allow_infinity=True),
        st.text(max_size=30),
        st.lists(st.integers(), max_size=2),
        st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    ),
)

# The fields `validate` reads, per entity ("N" stands for any list position).
READ = {
    "projects": r"id|name|external_id|client_id|client(\.(id|name|external_id))?|parent_id|active"
    r"|modified_time",
    "workers": r"id|employee_id|first_name|last_name|email|dob|employment_type|active"
    r"|modified_time",
    "timesheets": r"id|user_id|project_id|task_id|order_id|start_datetime|end_datetime|total_time"
    r"|status|processed_at|submitted_date|start_time|end_time|modified_time|activity_entries"
    r"(\.N(\.(id|duration|start_at|start_at_tz|start_at_naive|is_naive_datetime|activity"
    r"|activity\.external_id))?)?",
    "orders": r"id|start_date|end_date|job_number|po_number|project_id|client_id|status_id"
    r"|job_description|active|modified_time|activities(\.N(\.(external_id|name|quantity"
    r"|uom_code))?)?",
}


def _paths(rec: Any, prefix: str = "") -> tuple[list[str], list[str]]:
    """(leaf paths, container paths) into a record, dotted ("activity_entries.0.duration")."""
    leaves: list[str] = []
    containers: list[str] = []
    items = (
        rec.items() if isinstance(rec, dict) else enumerate(rec) if isinstance(rec, list) else []
    )
    for key, value in items:
        path = f"{prefix}{key}"
        if isinstance(value, dict | list) and value:
            containers.append(path)
            sub_leaves, sub_containers = _paths(value, path + ".")
            leaves += sub_leaves
            containers += sub_containers
        else:
            leaves.append(path)
    return leaves, containers


def mutate_chunk(
    data: st.DataObject, pool: list[Record], entity: str
) -> tuple[list[Any], set[int]]:
    """A few demo records with 1-4 random mutations; returns them and the positions touched."""
    picks = data.draw(st.lists(st.integers(0, len(pool) - 1), min_size=1, max_size=8, unique=True))
    records: list[Any] = [copy.deepcopy(pool[i]) for i in picks]
    touched: set[int] = set()
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(records) - 1))
        touched.add(pos)
        kind = data.draw(st.sampled_from(["leaf"] * 6 + ["container", "delete", "swap", "record"]))
        rec = records[pos]
        if kind == "record":
            records[pos] = data.draw(BAD_VALUES)
            continue
        if not isinstance(rec, dict):
            continue
        if kind == "swap" and entity == "timesheets":
            rec["start_datetime"], rec["end_datetime"] = (
                rec.get("end_datetime"),
                rec.get("start_datetime"),
            )
            continue
        leaves, containers = _paths(rec)
        paths = containers if kind == "container" and containers else leaves
        read = [p for p in paths if re.fullmatch(READ[entity], re.sub(r"\.\d+", ".N", p))]
        if read and data.draw(st.integers(0, 9)) < 8:
            paths = read  # mostly the fields validate reads; sometimes any other
        if not paths:
            continue
        path = data.draw(st.sampled_from(paths))
        deletable = kind == "delete" and not path.split(".")[-1].isdigit()
        setter(path, DELETE if deletable else data.draw(BAD_VALUES))(rec)
    return records, touched


def read_paths(entity: str, rec: Record) -> list[str]:
    """The dotted paths of a record that `validate` reads (containers included)."""
    leaves, containers = _paths(rec)
    return [p for p in leaves + containers if re.fullmatch(READ[entity], re.sub(r"\.\d+", ".N", p))]


@pytest.mark.parametrize("entity", ENTITIES)
def test_every_nasty_value_in_every_read_field(demo: dict[str, list[Record]], entity: str) -> None:
    """Each nasty value in each field validate reads costs that record alone, with a rule named."""
    mutants: list[Record] = []
    for base in demo[entity][:3]:
        for path in read_paths(entity, base):
            for value in [DELETE, *NASTY]:
                rec = copy.deepcopy(base)
                rec["id"] = 10**9 + len(mutants)  # unique, so only an id mutation can clash
                if value is DELETE and path.split(".")[-1].isdigit():
                    continue
                setter(path, value)(rec)
                mutants.append(rec)
    good = fresh(demo, entity, 5)
    result = validate(entity, good + mutants, timezone=TZ)
    assert len(result.rows) + len(result.quarantined) == len(good) + len(mutants)
    assert {r["id"] for r in good} <= {r["assignar_id"] for r in result.rows}
    for row in result.rows:
        assert_row_types(entity, row)
    for q in result.quarantined:
        assert "could not be" not in q.reason, q.reason  # an internal error, not a rule
    assert len(result.quarantined) > len(mutants) / 2


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_arbitrary_mutations_never_raise_and_nothing_is_lost(
    demo: dict[str, list[Record]], data: st.DataObject
) -> None:
    """Mutated chunks never raise; every record is a typed row or quarantined with a reason."""
    entity = data.draw(st.sampled_from(ENTITIES))
    records, touched = mutate_chunk(data, demo[entity], entity)
    result = validate(entity, records, timezone=TZ)
    assert len(result.rows) + len(result.quarantined) == len(records)
    for row in result.rows:
        assert_row_types(entity, row)
    for q in result.quarantined:
        assert q.reason and ": " in q.reason
        assert "could not be" not in q.reason, q.reason  # an internal error, not a rule
        json.dumps(q.record, allow_nan=False)
        assert q.assignar_id is None or len(q.assignar_id) <= 40
    # Untouched records stay valid unless a mutation gave another record their id.
    ids = [r.get("id") for r in records if isinstance(r, dict) and type(r.get("id")) is int]
    staged = {r["assignar_id"] for r in result.rows}
    for pos, rec in enumerate(records):
        if pos not in touched and ids.count(rec["id"]) == 1:
            assert rec["id"] in staged

"""Hostile and malformed input end to end: records served over HTTP with values the schema forbids
(and some it might not expect) go through real runs, and config and CLI input that cannot work is
refused with a message that says what to fix. `tests/test_schemas.py` checks `validate` alone
against every value pandera checks; here the whole run must survive them."""

from __future__ import annotations

import shutil

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assignar_pipeline.cli import main
from assignar_pipeline.pay import tables as t
from assignar_pipeline.pay.database import create_pay_engine
from tests.reliability.harness import (
    ASSETS,
    WINDOW,
    fast_assignar,
    pay_checksums,
    run_errors,
    truth,
    verdict,
)
from tests.support.pipeline import Pipeline

#: JSON-able values no timesheet field should hold, plus ones it may hold but rarely does.
HOSTILE = st.one_of(
    st.sampled_from(
        [
            None,
            "",
            "x" * 200_000,  # a huge string
            "\x00\x07\x1b[31m",  # control characters
            "Robert'); DROP TABLE timesheet;--",
            '" OR 1=1 --',
            "9999-12-31",
            "9999-12-31T23:59:59.999Z",
            "0000-00-00",
            "-01:30",  # a negative duration
            "25:61",
            "NaN",
            "Infinity",
            -1,
            2**63 - 1,
            -(2**63),
            1e308,
            True,
            [],
            {},
            {"id": "nested"},
        ]
    ),
    st.text(max_size=40),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
)
#: Fields of a timesheet the pipeline reads (the simulator's indexed ids and dates stay typed, so
#: that its own filters keep working).
FIELDS = [
    "total_time",
    "start_time",
    "end_time",
    "start_datetime",
    "end_datetime",
    "status",
    "user",
    "project",
    "task",
    "activity_entries",
    "allowances",
]


def _end_before_start_across_midnight(record: dict) -> dict:
    """A night shift whose end is stamped before its start (the day was not rolled over)."""
    return {"start_time": "22:00", "end_time": "06:00", "end_datetime": record["start_datetime"]}


def _negative_break(record: dict) -> dict:
    """Activity entries that overlap: a break of minus one hour."""
    entries = [dict(e) for e in record["activity_entries"]]
    if len(entries) > 1:
        entries[1]["start_at"] = entries[0]["start_at"]
    return {"activity_entries": entries}


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_hostile_records_are_quarantined_or_loaded_and_the_run_survives(
    sqlite_template, small_simulator, instance, monkeypatch, tmp_path_factory, data
):
    """A few records of a window get hostile values: the run succeeds; each is loaded as served
    or in quarantine with a reason; everything else in the window is loaded."""
    monkeypatch.setenv("ASSIGNAR_API_URL", small_simulator.api_url)
    monkeypatch.setenv("ASSIGNAR_TOKEN_URL", small_simulator.token_url)
    monkeypatch.setenv("DEMO_SECRET", "demo-secret-change-me")
    path = tmp_path_factory.mktemp("hostile") / "pay.db"
    shutil.copyfile(sqlite_template, path)  # each example starts from the clean import
    pipeline = Pipeline(create_pay_engine(f"sqlite:///{path}"), small_simulator, 1, instance)
    sim = pipeline.simulator.simulator
    sim.reset(sim.config)
    records = sorted(truth(pipeline.simulator, "timesheets").values(), key=lambda r: r["id"])
    targets = data.draw(
        st.lists(st.sampled_from(records), min_size=1, max_size=3, unique_by=lambda r: r["id"])
    )
    for record in targets:
        kind = data.draw(st.sampled_from(["field", "field", "midnight", "break"]))
        if kind == "midnight":
            changes = _end_before_start_across_midnight(record)
        elif kind == "break":
            changes = _negative_break(record)
        else:
            changes = {data.draw(st.sampled_from(FIELDS)): data.draw(HOSTILE)}
        sim.update("timesheets-expanded", record["id"], changes)
    result = pipeline.materialize(ASSETS["timesheets"], window=WINDOW, assignar=fast_assignar())
    assert result.success, "a run crashed on a record"
    demo = pipeline.connection_id("demo")
    with pipeline.engine.connect() as conn:
        reasons = dict(
            conn.execute(
                sa.select(t.quarantine.c.assignar_id, t.quarantine.c.reason).where(
                    t.quarantine.c.released_at.is_(None)
                )
            ).all()
        )
    assert all(reasons.values()), "a quarantined record without a reason"
    outcome = verdict(pipeline, demo)
    # A record whose served date left the window, or whose version went backwards, is judged by
    # where the simulator says it is now; nothing else may be lost or doubled.
    lost = [x for x in outcome.lost if not any(str(r["id"]) in x for r in targets)]
    assert lost == [] and outcome.duplicates == [], outcome
    pipeline.engine.dispose()


@pytest.mark.parametrize("case_pipeline", ["postgresql"], indirect=True)
@pytest.mark.parametrize(
    ("scope", "message"),
    [
        ({"connections": ["no-such-key"]}, "unknown connection key(s): 'no-such-key'"),
        (
            {"projects": ["Robert'); DROP TABLE timesheet;--"]},
            'has no project matching "Robert\'); DROP TABLE timesheet;--"',
        ),
        ({"workers": ['" OR 1=1 --']}, "has no worker matching '\" OR 1=1 --'"),
        ({"projects": ["PRJ-9999"]}, "Use the Assignar code, name, employee id or email"),
    ],
)
def test_run_config_that_cannot_work_is_refused_and_changes_nothing(case_pipeline, scope, message):
    """Unknown connections, projects and workers (with quotes and SQL in their names) fail the
    run with what to fix; Pay is untouched."""
    pipeline = case_pipeline
    before = pay_checksums(pipeline.engine)
    result = pipeline.materialize(
        ASSETS["timesheets"], window=WINDOW, assignar=fast_assignar(), **scope
    )
    assert not result.success
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    text = " ".join(e.event_specific_data.error.message for e in failures)
    text += " ".join(run_errors(pipeline.engine, result.run_id).values())
    assert message in text
    assert all(e.event_specific_data.error.cls_name == "Failure" for e in failures), (
        "a refusal is a Failure (not retried), not an exception"
    )
    assert pay_checksums(pipeline.engine) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2025-02-01", "--to", "2025-01-01"], "ends (2025-01-01) before it starts"),
        (["--from", "2024-01-01", "--to", "9999-12-31"], "is after today"),
        (["--from", "1900-01-01"], "is before the first partition"),
        (["--connection", "nope", "--last-3-months"], "unknown connection key(s): 'nope'"),
    ],
)
def test_bulk_import_refuses_ranges_and_keys_that_cannot_work(args, message, tmp_path, monkeypatch):
    """Reversed or enormous ranges and unknown connections: one line, exit 1, nothing launched."""
    monkeypatch.setenv("PAY_DATABASE_URL", f"sqlite:///{tmp_path / 'pay.db'}")
    monkeypatch.setenv("DAGSTER_URL", "http://127.0.0.1:9")  # nothing may be sent there
    result = CliRunner().invoke(main, ["bulk-import", *args])
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert "Traceback" not in result.output

"""Previewing an import: the real import code in a transaction that is rolled back. The simulator
over HTTP, Pay on SQLite and PostgreSQL, the CLI, and the Launchpad job on a real instance."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg
import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from assignar_pipeline.cli import main
from assignar_pipeline.connections import active_connections, open_client
from assignar_pipeline.definitions import defs
from assignar_pipeline.extract import Scope
from assignar_pipeline.pay import tables as t
from assignar_pipeline.preview import (
    PreviewFailed,
    PreviewRefused,
    PreviewRequest,
    pay_by_employee,
    preview_import,
)
from resources import AssignarResource, PayDatabaseResource
from tests.support.pay import table_checksums
from tests.support.pipeline import TODAY, make_pipeline

#: A small project of the demo tenant: 40 timesheets in the last week.
PROJECT = "PRJ-0003"
FIRST, LAST = TODAY - timedelta(days=6), TODAY
#: What `preview` runs: a run materializing these for the connection and window.
IMPORT = ["assignar_projects", "assignar_workers", "assignar_pay_rates", "assignar_timesheets",
          "pay_projects", "pay_employees", "pay_timesheets"]  # fmt: skip
ORDERS = ["assignar_orders", "pay_orders"]
SQLITE = pytest.mark.parametrize("pay_engine", ["sqlite"], indirect=True)


@pytest.fixture
def instance(tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        yield instance


@pytest.fixture
def pipeline(pay_engine, simulator, instance, monkeypatch):
    pipeline = make_pipeline(pay_engine, simulator, instance, monkeypatch)
    monkeypatch.setenv("PAY_DATABASE_URL", pipeline.url)
    return pipeline


def _preview(pipeline, **options):
    request = PreviewRequest("demo", FIRST, LAST, **options)
    return preview_import(pipeline.engine, request, lambda c, e: open_client(c, e))


def _fault(pipeline, **fault) -> None:
    url = f"{pipeline.simulator.base_url}/_simulator/faults"
    httpx.post(url, json=fault).raise_for_status()


def _log(engine, run_id: str) -> dict[str, sa.Row]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(t.sync_log).where(t.sync_log.c.run_id == run_id)).all()
    return {row.entity: row for row in rows}


def test_preview_writes_nothing_and_the_import_then_does_what_it_said(pipeline):
    """A preview of one project leaves every table byte-for-byte equal; the import that follows
    inserts, updates, holds, quarantines and raises exactly what the preview reported, and pays
    each employee what it said."""
    malformed = {"kind": "malformed_record", "count": 1, "path": "/v2/timesheets-expanded"}
    _fault(pipeline, **malformed)
    before = table_checksums(pipeline.engine)
    report = _preview(pipeline, projects=(PROJECT,), orders=True)
    assert table_checksums(pipeline.engine) == before
    assert report.entity("orders").pay["inserted"] > 0
    timesheets = report.entity("timesheets")
    assert timesheets.fetched == 40 and timesheets.pay["inserted"] > 0
    assert timesheets.pay["held"] > 0 and report.conflicts and len(report.quarantined) == 1

    _fault(pipeline, **malformed)
    window = (FIRST, LAST + timedelta(days=1))
    # Orders in a run of their own: in one run Dagster may extract them before the projects their
    # project filter names are staged (the asset graph does not order them); the preview does not.
    log = {}
    for assets in (IMPORT, ORDERS):
        result = pipeline.materialize(assets, window, connections=["demo"], projects=[PROJECT])
        assert result.success
        log.update(_log(pipeline.engine, result.run_id))
    for e in report.entities:
        staged, pay = log[e.entity], log[f"pay_{e.entity}"]
        assert (staged.fetched, staged.inserted, staged.updated, staged.unchanged) == (
            e.fetched, e.staged_new, e.staged_changed, e.staged_unchanged,
        ), e.entity  # fmt: skip
        assert (staged.voided, staged.quarantined) == (e.vanished, e.quarantined), e.entity
        assert (pay.inserted, pay.updated, pay.unchanged, pay.voided, pay.held) == (
            e.pay["inserted"] + e.pay["linked"], e.pay["updated"], e.pay["unchanged"],
            e.pay["voided"], e.pay["held"],
        ), e.entity  # fmt: skip
    assert log["pay_rates"].inserted == report.rates["inserted"]
    (connection,) = active_connections(pipeline.engine, ["demo"])
    with pipeline.engine.connect() as conn:
        conflicts = {
            row.id: row
            for row in conn.execute(
                sa.select(t.sync_conflict).where(t.sync_conflict.c.status == "open")
            )
        }
        quarantined = conn.execute(
            sa.select(t.quarantine.c.entity, t.quarantine.c.assignar_id, t.quarantine.c.reason)
        ).all()
        employees = pay_by_employee(conn, connection, window, Scope(projects=(PROJECT,)))
    assert {c.id for c in report.conflicts} == set(conflicts)
    assert all(c.status == "new" for c in report.conflicts)
    for c in report.conflicts:
        assert list(c.candidates) == conflicts[c.id].candidates
    assert [(q.entity, q.assignar_id, q.reason) for q in report.quarantined] == [
        tuple(q) for q in quarantined
    ]
    assert employees == report.employees
    assert report.total_minutes == sum(e.minutes for e in employees) > 0


def test_a_preview_that_fails_midway_leaves_the_database_as_it_was(pipeline):
    """Projects and workers are staged and loaded, then Assignar refuses the timesheets: the
    preview fails saying why, and not one row of any table changed."""
    assert pipeline.materialize(IMPORT, window=(FIRST, LAST)).success
    _fault(pipeline, kind="wrong_region", path="/v2/timesheets-expanded")
    before = table_checksums(pipeline.engine)
    with pytest.raises(PreviewFailed, match="Fetching timesheets from Assignar failed"):
        _preview(pipeline)
    assert table_checksums(pipeline.engine) == before


def test_a_preview_under_the_shared_rate_limit_finishes(pipeline):
    """With a request-rate limit the preview takes its tokens without waiting on its own
    transaction (SQLite's single write lock), and changes nothing else."""
    request = PreviewRequest("demo", FIRST, LAST)
    before = table_checksums(pipeline.engine)
    report = preview_import(
        pipeline.engine, request, lambda c, engine: open_client(c, engine, rate=500.0)
    )
    assert report.entity("timesheets").fetched > 0
    after = table_checksums(pipeline.engine)
    assert {k: v for k, v in after.items() if k != "rate_limit_bucket"} == {
        k: v for k, v in before.items() if k != "rate_limit_bucket"
    }


@SQLITE
def test_preview_refuses_what_cannot_work_and_writes_nothing(pipeline):
    """An unknown connection, project or worker, or dates in the wrong order, are refused with
    what to fix; the database is unchanged."""
    before = table_checksums(pipeline.engine)
    with pytest.raises(PreviewRefused, match=r"unknown connection key.*'nope'.*Active.*demo"):
        preview_import(pipeline.engine, PreviewRequest("nope", FIRST, LAST), open_client)
    with pytest.raises(PreviewRefused, match="no project matching 'PRJ-9999'"):
        _preview(pipeline, projects=("PRJ-9999",))
    with pytest.raises(PreviewRefused, match="no worker matching 'Nobody Here'"):
        _preview(pipeline, workers=("Nobody Here",))
    with pytest.raises(PreviewRefused, match=r"ends .* before it starts"):
        PreviewRequest("demo", LAST, FIRST)
    with pipeline.engine.begin() as conn:
        conn.execute(t.connection.update().values(import_orders=False))
    with pytest.raises(PreviewRefused, match="does not import orders: leave out --orders"):
        _preview(pipeline, orders=True)
    with pipeline.engine.begin() as conn:
        conn.execute(t.connection.update().values(import_orders=True))
    assert table_checksums(pipeline.engine) == before


@SQLITE
def test_preview_command_prints_the_report_and_refuses_bad_input(pipeline):
    """`preview` prints the report's markdown tables and exits 0; an unknown key, project, or
    reversed dates exit 2 naming the fix; a failing import exits 1; nothing is written."""
    before = table_checksums(pipeline.engine)
    args = ["preview", "--connection", "demo", "--from", str(FIRST), "--to", str(LAST)]
    result = CliRunner().invoke(main, [*args, "--project", PROJECT])
    assert result.exit_code == 0, result.output
    assert "Preview of an import for demo" in result.output
    assert "| timesheets | 40 |" in result.output and "### Pay by employee" in result.output
    unknown = CliRunner().invoke(main, ["preview", "--connection", "nope", *args[3:]])
    assert unknown.exit_code == 2 and "Refused: unknown connection key(s): 'nope'" in unknown.output
    project = CliRunner().invoke(main, [*args, "--project", "PRJ-9999"])
    assert project.exit_code == 2 and "no project matching 'PRJ-9999'" in project.output
    reversed_ = CliRunner().invoke(main, [*args[:3], "--from", str(LAST), "--to", str(FIRST)])
    assert reversed_.exit_code == 2 and "before it starts" in reversed_.output
    bad_date = CliRunner().invoke(main, [*args[:5], "--to", "14/11/2025"])
    assert bad_date.exit_code == 2 and "--to" in bad_date.output
    _fault(pipeline, kind="wrong_region", path="/v2/timesheets-expanded")
    failed = CliRunner().invoke(main, args)
    assert failed.exit_code == 1 and "Preview failed; nothing was written" in failed.output
    assert table_checksums(pipeline.engine) == before


def _run_job(pipeline, **config):
    job = defs.get_job_def("preview_import")
    return job.execute_in_process(
        run_config={"ops": {"preview_import_op": {"config": config}}},
        instance=pipeline.instance,
        resources={"assignar": AssignarResource(), "pay": PayDatabaseResource(url=pipeline.url)},
        raise_on_error=False,
    )


@SQLITE
def test_the_preview_job_shows_the_report_as_run_metadata_and_refuses_bad_input(pipeline):
    """The Launchpad job reports the same preview as markdown tables in its metadata, writes
    nothing, and fails with `Refused:` for an unknown connection or a date it cannot read."""
    before = table_checksums(pipeline.engine)
    window = {"from_date": str(FIRST), "to_date": str(LAST)}
    result = _run_job(pipeline, connection="demo", projects=[PROJECT], **window)
    assert result.success
    output = next(e for e in result.all_events if e.event_type_value == "STEP_OUTPUT")
    metadata = output.event_specific_data.metadata
    report = metadata["report"].value
    assert "| timesheets | 40 |" in report and "### Conflicts it would raise" in report
    expected = _preview(pipeline, projects=(PROJECT,))
    assert metadata["total_minutes"].value == expected.total_minutes
    assert metadata["total_pay"].value == str(expected.total_amount)
    assert result.output_for_node("preview_import_op") == expected.as_dict()
    assert table_checksums(pipeline.engine) == before

    for config, reason in (
        ({"connection": "nope", **window}, "Refused: unknown connection key(s): 'nope'"),
        ({"connection": "demo", "from_date": "2025-13-01", "to_date": str(LAST)},
         "Refused: from_date '2025-13-01' is not a date; write it as YYYY-MM-DD."),
    ):  # fmt: skip
        refused = _run_job(pipeline, **config)
        assert not refused.success
        failure = next(e for e in refused.all_events if e.event_type_value == "STEP_FAILURE")
        assert failure.event_specific_data.user_failure_data.description.startswith(reason)
    assert table_checksums(pipeline.engine) == before

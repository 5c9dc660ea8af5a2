"""Exporting a connection's data before big changes: one zip of CSV files with a manifest, from a
real import (simulator over HTTP, Pay on SQLite and PostgreSQL), by command and by job."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import dagster as dg
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from assignar_pipeline.cli import main
from assignar_pipeline.definitions import defs
from assignar_pipeline.export import ExportRefused, export_connections, read_snapshot
from assignar_pipeline.pay import tables as t
from assignar_pipeline.reconcile.resolve import Choice, resolve_conflicts
from resources import PayDatabaseResource
from tests.support.pay import table_checksums
from tests.support.pipeline import DEMO_OWNER, TODAY, make_pipeline

SECRET = "demo-secret-change-me"  # what make_pipeline puts in DEMO_SECRET
WINDOW = (TODAY - timedelta(days=6), TODAY + timedelta(days=1))
SQLITE = pytest.mark.parametrize("pay_engine", ["sqlite"], indirect=True)


@pytest.fixture
def instance(tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        yield instance


@pytest.fixture
def pipeline(pay_engine, simulator, instance, monkeypatch):
    """The demo connection with a week imported and one conflict resolved by the team owner."""
    pipeline = make_pipeline(pay_engine, simulator, instance, monkeypatch)
    monkeypatch.setenv("PAY_DATABASE_URL", pipeline.url)
    assert pipeline.materialize(window=WINDOW).success
    with pipeline.engine.connect() as conn:
        mismatch = conn.execute(
            sa.select(t.sync_conflict.c.id).where(t.sync_conflict.c.kind == "worker_mismatch")
        ).scalar()
    resolve_conflicts(
        pipeline.engine, [Choice(mismatch, "ignore", note="agency worker")], DEMO_OWNER,
        run_id="test",
    )  # fmt: skip
    return pipeline


def _open(path) -> tuple[dict, dict[str, list[dict[str, str]]], dict[str, bytes]]:
    """The manifest, each CSV as rows of dicts (as a spreadsheet would read it), and raw bytes."""
    with zipfile.ZipFile(path) as zf:
        raw = {name: zf.read(name) for name in zf.namelist()}
    manifest = json.loads(raw.pop("manifest.json"))
    tables = {
        name: list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
        for name, data in raw.items()
    }
    return manifest, tables, raw


def _count(engine, table, *where) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar()


def test_export_holds_what_the_integration_holds_and_opens_as_csv(pipeline, tmp_path):
    """The zip has the settings (the secret's variable name, never the secret), links,
    conflicts, the resolution with who decided, sync log, timesheets and orders with their
    lines; counts and checksums match the manifest, money is exact, and nothing is written."""
    before = table_checksums(pipeline.engine)
    out = tmp_path / "demo.zip"
    result = export_connections(pipeline.engine, ["demo"], out)
    assert table_checksums(pipeline.engine) == before
    manifest, tables, raw = _open(out)
    assert all(SECRET.encode() not in data for data in raw.values())
    for entry in manifest["files"]:
        assert entry["sha256"] == hashlib.sha256(raw[entry["name"]]).hexdigest()
        assert entry["rows"] == len(tables[entry["name"]]) == result.file(entry["name"]).rows
        assert entry["bytes"] == len(raw[entry["name"]])
    assert raw["timesheets.csv"].startswith("\ufeff".encode())  # Excel reads UTF-8 with a BOM
    (settings,) = tables["connections.csv"]
    assert settings["client_secret_variable"] == "DEMO_SECRET"
    assert (settings["connection"], settings["timezone"]) == ("demo", "Australia/Sydney")
    demo = pipeline.connection_id("demo")
    assert len(tables["links.csv"]) == _count(pipeline.engine, t.integration_link)
    assert len(tables["conflicts.csv"]) == _count(pipeline.engine, t.sync_conflict)
    assert len(tables["sync_log.csv"]) == _count(pipeline.engine, t.sync_log)
    assert len(tables["holds.csv"]) >= _count(pipeline.engine, t.sync_hold) > 0
    (resolution,) = tables["resolutions.csv"]
    assert (resolution["decision"], resolution["decided_by"]) == ("ignore", DEMO_OWNER)
    assert resolution["note"] == "agency worker" and resolution["kind"] == "Worker Mismatch"
    timesheets = _count(pipeline.engine, t.timesheet, t.timesheet.c.source_connection_id == demo)
    assert len(tables["timesheets.csv"]) == timesheets > 0
    assert len(tables["timesheet_lines.csv"]) == _count(pipeline.engine, t.timesheet_line)
    assert len(tables["orders.csv"]) == _count(pipeline.engine, t.pay_order) > 0
    assert len(tables["order_lines.csv"]) == _count(pipeline.engine, t.pay_order_line) > 0
    with pipeline.engine.connect() as conn:
        paid = conn.execute(sa.select(sa.func.sum(t.timesheet_line.c.amount))).scalar()
    amounts = [r["amount"] for r in tables["timesheet_lines.csv"] if r["amount"]]
    assert all(a.count(".") == 1 and len(a.split(".")[1]) == 2 for a in amounts)
    assert sum(Decimal(a) for a in amounts) == paid
    rates = {r["rate"] for r in tables["timesheet_lines.csv"] if r["rate"]}
    assert all(Decimal(r) == Decimal(r).quantize(Decimal("0.0001")) for r in rates)


def test_an_export_window_limits_timesheets_and_orders_only(pipeline, tmp_path):
    """With --from/--to the timesheets, lines and orders are those dates'; settings, links,
    conflicts and the sync log stay whole; the manifest says which files the window limits."""
    first, last = TODAY - timedelta(days=1), TODAY
    result = export_connections(pipeline.engine, ["demo"], tmp_path / "d.zip", window=(first, last))
    manifest, tables, _ = _open(result.path)
    assert (
        manifest["window"]["from"] == str(first)
        and "orders.csv" in manifest["window"]["applies_to"]
    )
    dates = {r["work_date"] for r in tables["timesheets.csv"]}
    assert dates and dates <= {str(first), str(last)}
    assert {r["work_date"] for r in tables["timesheet_lines.csv"]} <= dates
    assert all(str(first) <= r["start_date"] <= str(last) for r in tables["orders.csv"])
    assert len(tables["links.csv"]) == _count(pipeline.engine, t.integration_link)
    assert len(tables["sync_log.csv"]) == _count(pipeline.engine, t.sync_log)


def test_an_export_reads_one_snapshot_without_stopping_writers(pipeline):
    """While an export reads, an import can still commit (SQLite: the export holds no write
    lock), and the export keeps seeing the database as it was when it began."""
    demo = pipeline.connection_id("demo")
    with read_snapshot(pipeline.engine) as conn:
        seen = conn.execute(sa.select(sa.func.count()).select_from(t.sync_log)).scalar()
        with pipeline.engine.begin() as writer:
            writer.execute(
                t.sync_log.insert().values(
                    connection_id=demo,
                    run_id="meanwhile",
                    entity="timesheets",
                    started_at=datetime.now(UTC),
                )
            )
        again = conn.execute(sa.select(sa.func.count()).select_from(t.sync_log)).scalar()
    assert again == seen
    assert _count(pipeline.engine, t.sync_log) == seen + 1


@SQLITE
def test_export_refuses_what_cannot_work_and_leaves_no_file(pipeline, tmp_path):
    """An unknown key, an existing file, a missing folder or a reversed window are refused with
    what to fix; nothing is written, not even a partial file."""
    out = tmp_path / "x.zip"
    with pytest.raises(
        ExportRefused, match=r"Unknown connection key\(s\): 'nope'. Known keys: demo"
    ):
        export_connections(pipeline.engine, ["nope"], out)
    with pytest.raises(ExportRefused, match=r"ends .* before it starts"):
        export_connections(pipeline.engine, ["demo"], out, window=(TODAY, TODAY - timedelta(1)))
    with pytest.raises(ExportRefused, match="does not exist: create it first"):
        export_connections(pipeline.engine, ["demo"], tmp_path / "missing" / "x.zip")
    out.write_bytes(b"keep me")
    with pytest.raises(ExportRefused, match="already exists"):
        export_connections(pipeline.engine, ["demo"], out)
    assert out.read_bytes() == b"keep me"
    assert not list(tmp_path.glob("*.partial")) and not (tmp_path / "missing").exists()


@SQLITE
def test_export_disconnect_and_bulk_import_commands_take_an_export_first(pipeline, tmp_path):
    """`export` writes the zip and lists its files; `bulk-import --export` and `disconnect
    --export` take one before they act, and do not act when the export is refused."""
    out = tmp_path / "demo.zip"
    code = CliRunner().invoke(main, ["export", "--connection", "demo", "--out", str(out)])
    assert code.exit_code == 0, code.output
    assert f"Exported demo to {out}" in code.output and "timesheets.csv" in code.output
    refused = CliRunner().invoke(main, ["export", "--connection", "nope", "--out", str(out)])
    assert refused.exit_code == 2 and "Refused: Unknown connection key(s): 'nope'" in refused.output
    half = CliRunner().invoke(
        main, ["export", "--connection", "demo", "--from", str(TODAY), "--out", str(out)]
    )
    assert half.exit_code == 2 and "Give both --from and --to" in half.output

    queued = tmp_path / "before-import.zip"
    args = ["bulk-import", "--connection", "demo", "--from", str(TODAY - timedelta(days=2)),
            "--to", str(TODAY), "--at", "22:00"]  # fmt: skip
    result = CliRunner().invoke(main, [*args, "--export", str(queued)])
    assert result.exit_code == 0, result.output
    assert result.output.index("Exported demo") < result.output.index("Queued bulk import")
    manifest, _, _ = _open(queued)
    assert manifest["window"]["to"] == str(TODAY)
    again = CliRunner().invoke(main, [*args, "--export", str(queued)])
    assert again.exit_code == 1 and "Not launched:" in again.output
    assert _count(pipeline.engine, t.bulk_import) == 1
    printed = CliRunner().invoke(main, [*args[:-2], "--print", "--export", str(tmp_path / "p")])
    assert printed.exit_code == 2 and "nothing to --export" in printed.output

    kept = CliRunner().invoke(main, ["disconnect", "--key", "demo", "--export", str(out)])
    assert kept.exit_code == 1 and "Not disconnected:" in kept.output
    assert _count(pipeline.engine, t.connection, t.connection.c.status == "active") == 1
    final = tmp_path / "final.zip"
    gone = CliRunner().invoke(main, ["disconnect", "--key", "demo", "--export", str(final)])
    assert gone.exit_code == 0, gone.output
    assert "Exported demo" in gone.output and "Disconnected demo" in gone.output
    _, tables, _ = _open(final)
    assert tables["connections.csv"][0]["status"] == "active"  # taken before disconnecting
    assert _count(pipeline.engine, t.connection, t.connection.c.status == "active") == 0


@SQLITE
def test_the_export_job_writes_the_zip_and_lists_its_files(pipeline, tmp_path):
    """The Launchpad job writes the same zip and shows each file's rows and SHA-256 as
    metadata; an unknown key or half a window is refused."""
    job = defs.get_job_def("export_connection")
    out = tmp_path / "job.zip"

    def run(**config):
        return job.execute_in_process(
            run_config={"ops": {"export_connection_op": {"config": config}}},
            instance=pipeline.instance,
            resources={"pay": PayDatabaseResource(url=pipeline.url)},
            raise_on_error=False,
        )

    result = run(connections=["demo"], out=str(out))
    assert result.success
    manifest, _, _ = _open(out)
    output = next(e for e in result.all_events if e.event_type_value == "STEP_OUTPUT")
    metadata = output.event_specific_data.metadata
    files = metadata["files"].value
    for entry in manifest["files"]:
        assert f"| {entry['name']} | {entry['rows']} | {entry['sha256']} |" in files
    assert metadata["dagster/row_count"].value == sum(f["rows"] for f in manifest["files"])
    for config, reason in (
        ({"connections": ["nope"], "out": str(tmp_path / "n.zip")}, "Refused: Unknown connection"),
        ({"connections": ["demo"], "out": str(tmp_path / "h.zip"), "from_date": str(TODAY)},
         "Refused: give both from_date and to_date"),
    ):  # fmt: skip
        refused = run(**config)
        failure = next(e for e in refused.all_events if e.event_type_value == "STEP_FAILURE")
        assert failure.event_specific_data.user_failure_data.description.startswith(reason)

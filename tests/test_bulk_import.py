"""Bulk imports: the GraphQL request `bulk-import` builds (dates, presets, filters), and end to end
a queued off-hours import launched by the sensor as a backfill on a real `dagster dev` (webserver
and daemon), importing only the chosen project and dates, then emailed to the team."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from assignar_pipeline.bulk import (
    BulkImport,
    BulkImportError,
    backfill_params,
    date_range,
    local_today,
)
from assignar_pipeline.cli import main
from assignar_pipeline.pay import tables as t
from assignar_pipeline.sync_settings import SettingsChange, change_settings
from tests.support.notify import Inbox, smtp_server
from tests.support.pipeline import LAST_4_WEEKS, TODAY, make_pipeline
from tests.support.sync import add_connection

ROOT = Path(__file__).resolve().parents[1]


def test_presets_cover_full_history_three_months_and_explicit_dates():
    """full = first partition..today, 3m = the day after 3 calendar months ago..today, --from/--to
    as given; a start before the first partition or a reversed range is refused."""
    today, first = date(2025, 5, 31), date(2020, 1, 1)
    assert date_range("full", today, first) == (first, today)
    assert date_range("3m", today, first) == (date(2025, 3, 1), today)
    assert date_range(None, today, first, start=date(2025, 1, 5)) == (date(2025, 1, 5), today)
    with pytest.raises(BulkImportError, match="PIPELINE_HISTORY_START"):
        date_range(None, today, first, start=date(2019, 12, 31))
    with pytest.raises(BulkImportError, match="before it starts"):
        BulkImport(start=date(2025, 2, 2), end=date(2025, 2, 1))


@pytest.mark.parametrize(
    "given",
    [
        ["--last-3-months", "--full-history"],
        ["--full-history", "--from", "2024-01-01"],
        ["--last-3-months", "--to", "2024-01-31"],
    ],
)
def test_contradicting_ranges_are_refused_before_anything_is_built(given):
    """Two presets, or a preset with --from/--to, are refused naming both; nothing is printed."""
    result = CliRunner().invoke(main, ["bulk-import", *given, "--print"])
    assert result.exit_code == 1
    assert "Choose one range" in result.output
    for option in given:
        if option.startswith("--"):
            assert option in result.output
    assert "launchPartitionBackfill" not in result.output


def test_today_is_the_connections_local_date():
    """A preset ends on the latest local date of the connections imported (their work dates
    are local), not on the date where the command runs."""
    evening_utc = datetime(2026, 12, 2, 17, 40, tzinfo=UTC)
    assert local_today(["Australia/Sydney", "America/Denver"], evening_utc) == date(2026, 12, 3)
    assert local_today(["America/Denver"], evening_utc) == date(2026, 12, 2)


@pytest.mark.parametrize("pay_engine", ["sqlite"], indirect=True)
def test_last_3_months_ends_today_in_the_connections_zone(pay_engine, monkeypatch):
    """`--last-3-months` for a Sydney connection ends on Sydney's today, as its initial
    import did, and the printed request says the same."""
    add_connection(pay_engine, "sydney", "Australia/Sydney")
    monkeypatch.setenv("PAY_DATABASE_URL", pay_engine.url.render_as_string(hide_password=False))
    result = CliRunner().invoke(
        main, ["bulk-import", "--connection", "sydney", "--last-3-months", "--print"]
    )
    assert result.exit_code == 0, result.output
    sydney_today = datetime.now(UTC).astimezone(ZoneInfo("Australia/Sydney")).date()
    (first,) = json.loads(result.output)["variables"]["backfillParams"]["partitionsByAssets"][:1]
    assert first["partitions"]["range"]["end"] == sydney_today.isoformat()


def test_print_shows_the_launch_partition_backfill_request(monkeypatch, tmp_path):
    """`bulk-import --print` shows the mutation with the chosen dated assets over the range, the
    connections and filters as run config, and the bulk-import tag."""
    monkeypatch.setenv("PAY_DATABASE_URL", f"sqlite:///{tmp_path / 'pay.db'}")  # no connections
    result = CliRunner().invoke(
        main,
        ["bulk-import", "--connection", "acme", "--connection", "beta", "--from", "2024-02-01",
         "--to", "2024-04-30", "--project", "PRJ-0002", "--worker", "E-1001", "--orders",
         "--print"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert "launchPartitionBackfill" in body["query"]
    params = body["variables"]["backfillParams"]
    ranges = {a["assetKey"]["path"][0]: a.get("partitions") for a in params["partitionsByAssets"]}
    span = {"range": {"start": "2024-02-01", "end": "2024-04-30"}}
    for asset in ("assignar_timesheets", "pay_timesheets", "assignar_orders", "pay_orders"):
        assert ranges[asset] == span
    assert set(ranges) == {"assignar_timesheets", "pay_timesheets", "assignar_orders", "pay_orders"}
    assert params["runConfigData"] == {
        "resources": {
            "scope": {
                "config": {
                    "connections": ["acme", "beta"],
                    "projects": ["PRJ-0002"],
                    "workers": ["E-1001"],
                }
            }
        }
    }
    tags = {t["key"]: t["value"] for t in params["tags"]}
    assert tags == {"assignar/operation": "bulk_import", "assignar/connections": "acme,beta"}
    assert backfill_params(BulkImport(start=date(2024, 1, 1), end=date(2024, 1, 1)))["tags"]


# -- end to end on a real Dagster ---------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _graphql(url: str, query: str, **variables) -> dict:
    response = httpx.post(
        f"{url}/graphql", json={"query": query, "variables": variables}, timeout=30
    )
    response.raise_for_status()
    return response.json()["data"]


BACKFILLS = """{ partitionBackfillsOrError { ... on PartitionBackfills { results {
  id status title tags { key value } } } } }"""


@pytest.fixture
def dagster_dev(tmp_path):
    """`dagster dev` (webserver, daemon, code server) in a process group of its own."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"

    def start(env: dict[str, str]) -> str:
        log = open(tmp_path / "dagster.log", "w")  # noqa: SIM115 (closed with the process)
        process = subprocess.Popen(
            [Path(sys.executable).with_name("dagster"), "dev", "-w", "workspace.yaml",
             "-h", "127.0.0.1", "-p", str(port)],
            cwd=ROOT,
            env={**os.environ, **env, "DAGSTER_HOME": str(home), "DAGSTER_URL": url},
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        started.append((process, log))
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/server_info", timeout=2).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
            assert process.poll() is None, (tmp_path / "dagster.log").read_text()[-3000:]
            time.sleep(1)
        raise TimeoutError("dagster dev did not answer within 180 s")

    started: list = []
    yield start
    for process, log in started:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:  # the code server can ignore SIGTERM (dagster-notes)
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        log.close()


@pytest.mark.parametrize("pay_engine", ["sqlite"], indirect=True)
@pytest.mark.timeout(600)
def test_a_queued_bulk_import_runs_as_a_backfill_and_is_emailed(
    pay_engine, simulator, tmp_path, monkeypatch, dagster_dev
):
    """Queued with --at for a time already past, the import is launched by the sensor through
    GraphQL as a backfill, imports the chosen project's timesheets of those dates only, and the
    team gets the bulk import's totals by email when the backfill ends."""
    import dagster as dg

    with dg.instance_for_test() as instance:
        pipeline = make_pipeline(pay_engine, simulator, instance, monkeypatch)
        assert pipeline.materialize().success  # the team's initial import is done
    change_settings(pipeline.engine, "demo", SettingsChange(notify_emails="payroll@example.com"))
    monkeypatch.setenv("PAY_DATABASE_URL", pipeline.url)
    first, last = TODAY - timedelta(days=60), TODAY - timedelta(days=46)
    project = "PRJ-0003"  # Perth Airport Terminal Upgrade
    inbox = Inbox()
    mail = smtp_server(inbox)
    mail.start()
    try:
        queued = CliRunner().invoke(
            main,
            ["bulk-import", "--connection", "demo", "--from", str(first), "--to", str(last),
             "--project", project, "--at", (datetime.now(UTC) - timedelta(minutes=1)).isoformat()],
        )  # fmt: skip
        assert queued.exit_code == 0, queued.output
        url = dagster_dev(
            {
                "PAY_DATABASE_URL": pipeline.url,
                "ASSIGNAR_API_URL": simulator.api_url,
                "ASSIGNAR_TOKEN_URL": simulator.token_url,
                "DEMO_SECRET": "demo-secret-change-me",
                "SMTP_HOST": "127.0.0.1",
                "SMTP_PORT": str(mail.port),
                "SMTP_STARTTLS": "false",
                "PIPELINE_SENSOR_INTERVAL": "5",
            }
        )
        backfill = _wait(lambda: _finished_backfill(url), 420, "the backfill to finish")
        assert backfill["status"] == "COMPLETED_SUCCESS", backfill
        # The team also hears of the demo's open conflicts (alerts); this is the import's email.
        (message,) = _wait(
            lambda: [m for m in inbox.to("payroll@example.com") if "bulk import" in m["Subject"]],
            120,
            "the email",
        )
    finally:
        mail.stop()

    assert "bulk import finished" in message["Subject"]
    assert f"/runs/b/{backfill['id']}" in message.get_content()
    with pay_engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.staging_timesheet.c.work_date, t.staging_project.c.code)
            .join(t.staging_project, sa.and_(
                t.staging_project.c.connection_id == t.staging_timesheet.c.connection_id,
                t.staging_project.c.assignar_id == t.staging_timesheet.c.project_assignar_id))
            .where(t.staging_timesheet.c.work_date < LAST_4_WEEKS[0])
        ).all()  # fmt: skip
        request = conn.execute(sa.select(t.bulk_import)).one()
    assert rows, "the bulk import staged nothing"
    assert {code for _, code in rows} == {project}
    assert min(d for d, _ in rows) >= first and max(d for d, _ in rows) <= last
    assert (request.status, request.backfill_id) == ("launched", backfill["id"])


def _finished_backfill(url: str) -> dict | None:
    results = _graphql(url, BACKFILLS)["partitionBackfillsOrError"]["results"]
    for backfill in results:
        tags = {t["key"]: t["value"] for t in backfill["tags"]}
        if tags.get("assignar/operation") == "bulk_import" and backfill["status"] not in (
            "REQUESTED",
            "CANCELING",
            "FAILING",
        ):
            return backfill
    return None


def _wait(probe, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(2)
    raise TimeoutError(f"waited {seconds:.0f} s for {what}")


# -- refusals before launching, and a refused step that records nothing ------------------------


@pytest.fixture
def imported(pay_engine, simulator, tmp_path, monkeypatch):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        pipeline = make_pipeline(pay_engine, simulator, instance, monkeypatch)
        assert pipeline.materialize(["assignar_projects", "assignar_workers"]).success
        monkeypatch.setenv("PAY_DATABASE_URL", pipeline.url)
        yield pipeline


@pytest.mark.parametrize("pay_engine", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("option", "name"), [("--project", "NOPE-1"), ("--worker", "nobody@example.com")]
)
def test_bulk_import_refuses_a_project_or_worker_the_connection_lacks(imported, option, name):
    """An unknown project or worker is refused before launching, naming it and the connection."""
    unreachable = f"http://127.0.0.1:{_free_port()}"  # launching would fail differently
    result = CliRunner().invoke(
        main,
        ["bulk-import", "--from", "2026-11-01", "--to", "2026-11-03", option, name,
         "--dagster-url", unreachable],
    )  # fmt: skip
    assert result.exit_code != 0
    assert f"Connection 'demo' has no {option[2:]} matching '{name}'" in result.output
    assert "Cannot reach Dagster" not in result.output


@pytest.mark.parametrize("pay_engine", ["sqlite"], indirect=True)
def test_a_refused_step_records_no_materialization(imported):
    """A run whose only connection refuses its filter fails with the reason and materializes
    none of its dates, so the dates never look freshly loaded."""
    result = imported.materialize(
        ["assignar_timesheets", "pay_timesheets"], (date(2026, 11, 1), date(2026, 11, 4)),
        projects=["NOPE-1"],
    )  # fmt: skip

    assert not result.success
    assert result.get_asset_materialization_events() == []
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    description = failure.step_failure_data.user_failure_data.description
    assert "nothing was loaded" in description and "'NOPE-1'" in description
    for asset in ("assignar_timesheets", "pay_timesheets"):
        assert imported.instance.get_materialized_partitions(dg.AssetKey(asset)) == set()

"""The production topology end to end (`make test-deploy`): `python -m deploy.local up` starts
PostgreSQL, Redis, the simulator, the code server, webserver, daemon and two Celery workers as an
unprivileged user; an operator connects the demo team and runs bulk imports through the GraphQL
API; a Celery worker is killed in the middle of one; Pay is compared with the simulator; the UI is
read in headless Chromium. The tests share one topology and run in file order."""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import sqlalchemy as sa
from celery import Celery
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from assignar_pipeline.bulk import date_range
from assignar_pipeline.pay import tables as t
from assignar_pipeline.pay.database import create_pay_engine
from assignar_pipeline.simulator import Simulator, TenantConfig
from assignar_pipeline.simulator.timeutil import parse_datetime
from deploy import operate
from deploy.local import DEMO_SECRET, WORKERS, Settings, commands
from tests.support.pay import cells_containing
from tests.support.pipeline import Pipeline, assert_pay_matches_assignar

pytestmark = [pytest.mark.deploy, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1600,1000",
]  # fmt: skip
#: The second bulk import's runs end after this long if a worker dies under them (run monitoring).
KILLED_RUN_MAX_RUNTIME = 35  # its runs take about 6 s here
RUN_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# The step keys in a Celery task's packed ExecuteStepArgs (plain or JSON-escaped).
STEP_KEY = re.compile(r'step_keys_to_execute[\\"]*:\s*\[[\\"]*(\w+)')
#: Seconds the simulator waits before each API answer until the worker is killed, so the step it
#: runs is still running when the kill lands (a step takes well under a second otherwise).
SLOW_API_SECONDS = 1.0


@pytest.fixture(scope="module")
def deployment() -> Iterator[Settings]:
    """The topology, on free ports in a directory of its own; stopped (and checked) afterwards."""
    for binary in ("redis-server", CHROMIUM, CHROMEDRIVER):
        assert shutil.which(binary), f"{binary} is missing: apt-get install redis-server "
        "chromium chromium-driver (.ci/run installs them)"
    # Under /tmp, not pytest's private tmp_path: the service user must reach it.
    state = Path(tempfile.mkdtemp(prefix="deploy-test-", dir="/tmp"))
    state.chmod(0o755)
    env = {
        **os.environ,
        "DEPLOY_DIR": str(state),
        "SIMULATOR_NOW": datetime.now().astimezone().strftime("%Y-%m-%dT%H:00:00%z"),
        "PIPELINE_SENSOR_INTERVAL": "5",
        # Month-long runs (a production default is a year): the bulk imports below need several
        # runs of one backfill, to see the tag limit hold 2 at a time and a worker die under one.
        "BACKFILL_DAYS_PER_RUN": "31",
        **dict.fromkeys(
            ("DAGSTER_PORT", "CODE_SERVER_PORT", "SIMULATOR_PORT", "POSTGRES_PORT", "REDIS_PORT"),
            "0",
        ),
    }
    up = subprocess.run(
        [sys.executable, "-m", "deploy.local", "up", "--no-demo"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    settings = Settings(**json.loads((state / "settings.json").read_text()))
    try:
        assert up.returncode == 0, f"deploy.local up failed:\n{up.stdout}\n{up.stderr}"
        yield settings
    finally:
        subprocess.run(
            [sys.executable, "-m", "deploy.local", "down"],
            cwd=ROOT, env=env, capture_output=True, timeout=120, check=False,
        )  # fmt: skip
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="module")
def pay(deployment: Settings) -> Iterator[sa.Engine]:
    engine = create_pay_engine(deployment.pay_url())
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def truth(deployment: Settings) -> Simulator:
    """The tenant the simulator serves, generated here from the same seed and "now"."""
    return Simulator(TenantConfig.scaled(1.0, now=parse_datetime(deployment.simulator_now)))


@pytest.fixture(scope="module")
def window(deployment: Settings) -> tuple[date, date]:
    """The last 3 months up to the simulated today, as `bulk-import --last-3-months` takes them
    (end exclusive, as the Pay checks take windows)."""
    today = parse_datetime(deployment.simulator_now).date()
    start, end = date_range("3m", today, date(2020, 1, 1))
    return start, end + timedelta(days=1)


@pytest.fixture(scope="module")
def state() -> dict:
    """What one test hands to the next (backfill ids, Pay checksums)."""
    return {}


def _pipeline(pay: sa.Engine, truth: Simulator) -> Pipeline:
    return Pipeline(pay, SimpleNamespace(simulator=truth), team_id=0, instance=None)


def _demo_connection_id(pay: sa.Engine) -> int:
    with pay.connect() as conn:
        return conn.execute(
            sa.select(t.connection.c.id).where(t.connection.c.key == "demo")
        ).scalar_one()


def _runs(url: str) -> list[dict]:
    query = """{ runsOrError(limit: 500) { ... on Runs { results {
        runId status startTime endTime tags { key value } } } } }"""
    return operate.graphql(url, query)["runsOrError"]["results"]


def _tags(run: dict) -> dict[str, str]:
    return {tag["key"]: tag["value"] for tag in run["tags"]}


def _wait_until_idle(url: str, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while any(r["status"] not in operate.FINISHED_RUN for r in _runs(url)):
        assert time.monotonic() < deadline, "runs still going after the wait"
        time.sleep(2)


def _max_overlap(runs: list[dict]) -> int:
    edges = sorted(
        [(r["startTime"], 1) for r in runs] + [(r["endTime"], -1) for r in runs],
        key=lambda edge: (edge[0], edge[1]),
    )
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


def test_every_service_runs_as_an_unprivileged_user_with_a_log_and_a_pid_file(
    deployment: Settings,
) -> None:
    """Each service is alive in a process group of its own, owned by the service user (never
    root), and writes its own log file."""
    state = deployment.state
    for name in commands(deployment):
        pid = int((state / "run" / f"{name}.pid").read_text())
        owner = pwd.getpwuid(Path(f"/proc/{pid}").stat().st_uid).pw_name
        assert owner == deployment.user != "root", f"{name} runs as {owner}"
        assert os.getpgid(pid) == pid, f"{name} is not the leader of its own process group"
        assert (state / "logs" / f"{name}.log").stat().st_size > 0, f"{name} logged nothing"


def test_the_instance_is_on_postgresql_and_the_daemons_are_healthy(deployment: Settings) -> None:
    """The webserver reads deploy/dagster.yaml's PostgreSQL storage and every daemon reports in."""
    query = """{ instance { info daemonHealth { allDaemonStatuses { daemonType healthy } } } }"""
    deadline = time.monotonic() + 60
    while True:
        instance = operate.graphql(deployment.webserver_url, query)["instance"]
        statuses = instance["daemonHealth"]["allDaemonStatuses"]
        unhealthy = [s["daemonType"] for s in statuses if not s["healthy"]]
        if not unhealthy or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert not unhealthy, f"daemons not healthy: {unhealthy}"
    assert "PostgresRunStorage" in instance["info"]
    assert "max_concurrent_runs: 6" in instance["info"]  # deploy/dagster.yaml's queue


def test_operator_connects_the_demo_team_through_graphql(
    deployment: Settings, pay: sa.Engine
) -> None:
    """`connect_assignar` launched with the dagster-graphql client stores the connection (with the
    secret's variable name only), and the initial-import sensor imports its last 4 weeks."""
    init = (deployment.state / "logs" / "setup.log").read_text()
    team_id = int(init.split("Demo team id:")[1].split()[0])
    operate.connect_demo_team(deployment.webserver_url, team_id)
    with pay.connect() as conn:
        row = conn.execute(sa.select(t.connection).where(t.connection.c.key == "demo")).one()
    assert row.team_id == team_id
    deadline = time.monotonic() + 180
    while not any(
        _tags(r).get("assignar/operation") == "initial_import" and r["status"] == "SUCCESS"
        for r in _runs(deployment.webserver_url)
    ):
        assert time.monotonic() < deadline, "the initial import did not succeed within 3 min"
        time.sleep(2)
    assert cells_containing(pay, DEMO_SECRET) == [], "the client secret reached the database"


def test_three_month_bulk_import_on_celery_leaves_pay_exact(
    deployment: Settings, pay: sa.Engine, truth: Simulator, window, state: dict
) -> None:
    """A 3-month backfill launched by GraphQL completes in ranged runs whose steps both Celery
    workers executed, at most 2 bulk runs at a time, and Pay then equals Assignar."""
    url = deployment.webserver_url
    _wait_until_idle(url)
    backfill_id = operate.launch_bulk_import(
        url, window[0], window[1] - timedelta(days=1), ("demo",)
    )
    result = operate.wait_for_backfill(url, backfill_id, timeout=300)
    assert result["status"] == "COMPLETED_SUCCESS", result
    runs = result["runs"]
    assert len(runs) >= 3 and all(r["status"] == "SUCCESS" for r in runs)  # 92 days / 31
    bulk = [r for r in _runs(url) if _tags(r).get("dagster/backfill") == backfill_id]
    assert _max_overlap(bulk) <= 2, "the bulk_import tag limit let more than 2 runs go at once"
    for worker in WORKERS:
        log = (deployment.state / "logs" / f"{worker}.log").read_text()
        assert "Task execute_plan" in log and "succeeded" in log, f"{worker} ran no step"
    pipeline = _pipeline(pay, truth)
    assert_pay_matches_assignar(pipeline, _demo_connection_id(pay), window)
    state["checksums"] = pipeline.checksums()
    state["first_backfill"] = backfill_id


def test_killing_a_celery_worker_mid_backfill_still_completes_it_and_pay_stays_exact(
    deployment: Settings, pay: sa.Engine, truth: Simulator, window, state: dict
) -> None:
    """SIGKILL of a whole Celery worker (main process and pool child) while it runs a step of a
    second bulk import: the step's task is lost (acknowledged on receipt), run monitoring fails
    its run at the run's max runtime, run retries re-execute it on the other worker, the
    backfill completes, and Pay is exactly as after the first import."""
    url = deployment.webserver_url
    _wait_until_idle(url)
    backfill_id = operate.launch_bulk_import(
        url,
        window[0],
        window[1] - timedelta(days=1),
        ("demo",),
        **{"dagster/max_runtime": str(KILLED_RUN_MAX_RUNTIME)},
    )
    faults = f"http://127.0.0.1:{deployment.simulator_port}/_simulator/faults"
    httpx.post(
        faults, json={"kind": "slow", "delay": SLOW_API_SECONDS, "count": None}
    ).raise_for_status()
    broker = Celery(broker=deployment.env()["DAGSTER_CELERY_BROKER_URL"])
    victim, victim_run = None, None
    deadline = time.monotonic() + 240
    try:
        # The worker that runs an extract step (it waits on the slowed API) of the backfill.
        while victim is None:
            assert time.monotonic() < deadline, "no step of the backfill reached a worker"
            ids = {r["runId"] for r in operate.backfill(url, backfill_id)["runs"]}
            for name, tasks in (broker.control.inspect(timeout=1).active() or {}).items():
                for task in tasks:
                    packed = json.dumps(task["kwargs"])  # the step's ExecuteStepArgs
                    if not any(k.startswith("assignar_") for k in STEP_KEY.findall(packed)):
                        continue
                    for run_id in ids & set(RUN_ID.findall(packed)):
                        victim, victim_run = name.split("@")[0], run_id
            time.sleep(0.2)
    finally:
        broker.close()
    os.killpg(int((deployment.state / "run" / f"{victim}.pid").read_text()), signal.SIGKILL)
    httpx.delete(faults).raise_for_status()

    result = operate.wait_for_backfill(url, backfill_id, timeout=420)
    assert result["status"] == "COMPLETED_SUCCESS", result
    by_id = {r["runId"]: r for r in result["runs"]}
    assert by_id[victim_run]["status"] == "FAILURE"
    retries = [r for r in result["runs"] if _tags(r).get("dagster/parent_run_id") == victim_run]
    assert [r["status"] for r in retries] == ["SUCCESS"], "the killed run was not retried once"
    events = operate.graphql(
        url,
        """query ($id: ID!) { runOrError(runId: $id) { ... on Run { eventConnection {
            events { ... on MessageEvent { message } } } } } }""",
        {"id": victim_run},
    )["runOrError"]["eventConnection"]["events"]
    assert any("maximum runtime" in (e.get("message") or "") for e in events)

    pipeline = _pipeline(pay, truth)
    assert_pay_matches_assignar(pipeline, _demo_connection_id(pay), window)
    assert pipeline.checksums() == state["checksums"], "Pay changed on the repeated import"
    state["second_backfill"] = backfill_id


def test_the_ui_shows_the_asset_groups_and_the_backfill_runs(
    deployment: Settings, state: dict
) -> None:
    """Headless Chromium: the asset graph has the `assignar` and `pay` groups with their assets,
    and the first bulk import's page lists its runs."""
    url = deployment.webserver_url
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="deploy-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)

    def page_text(path: str, *expected: str) -> str:
        driver.get(url + path)
        WebDriverWait(driver, 60).until(
            lambda d: all(e in d.find_element(By.TAG_NAME, "body").text for e in expected)
        )
        return driver.find_element(By.TAG_NAME, "body").text

    try:
        page_text("/asset-groups", "Global asset lineage")
        for group in ("assignar", "pay"):
            # The graph renders after the page's title: wait for the group's node and list entry.
            named = f"//*[normalize-space(text())='{group}']"
            try:
                WebDriverWait(driver, 60).until(
                    lambda d, named=named: len(d.find_elements(By.XPATH, named)) >= 2
                )
            except TimeoutException:
                pytest.fail(f"group {group} is not in the asset graph (and its list)")
        page_text(
            "/locations/assignar_pipeline/asset-groups/assignar/lineage",
            "assignar_timesheets", "assignar_workers", "assignar_projects",
        )  # fmt: skip
        page_text(
            "/locations/assignar_pipeline/asset-groups/pay/lineage",
            "pay_timesheets", "pay_employees", "pay_projects",
        )  # fmt: skip
        runs = operate.backfill(url, state["first_backfill"])["runs"]
        page_text(f"/runs/b/{state['first_backfill']}?tab=runs", *(r["runId"][:8] for r in runs))
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def test_down_stops_every_process(deployment: Settings) -> None:
    """`deploy.local down` ends every service's process group, the code server's run workers
    included (it ignores SIGTERM: its group is killed after the timeout), and PostgreSQL."""
    groups = {
        name: int((deployment.state / "run" / f"{name}.pid").read_text())
        for name in commands(deployment)
    }
    env = {**os.environ, "DEPLOY_DIR": deployment.state_dir}
    started = time.monotonic()
    down = subprocess.run(
        [sys.executable, "-m", "deploy.local", "down"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert down.returncode == 0, down.stderr
    for name, pgid in groups.items():
        with pytest.raises(ProcessLookupError):
            os.killpg(pgid, 0)
        assert not (deployment.state / "run" / f"{name}.pid").exists()
    assert not (deployment.state / "postgres" / "data" / "postmaster.pid").exists()
    assert time.monotonic() - started < 120

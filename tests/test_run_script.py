"""`make run` (scripts/run.sh) starts Dagster with the command Dagster 1.13 recommends, `dg dev`,
which loads workspace.yaml and prints no SupersessionWarning (`dagster dev` does)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
LOCATIONS = """{ workspaceOrError { ... on Workspace { locationEntries {
  name loadStatus locationOrLoadError { __typename } } } } }"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _loaded_locations(url: str) -> list[str]:
    try:
        resp = httpx.post(f"{url}/graphql", json={"query": LOCATIONS}, timeout=5)
    except httpx.HTTPError:
        return []
    if resp.status_code != 200:
        return []
    entries = resp.json()["data"]["workspaceOrError"]["locationEntries"]
    return [
        e["name"]
        for e in entries
        if e["loadStatus"] == "LOADED"
        and e["locationOrLoadError"]["__typename"] == "RepositoryLocation"
    ]


def test_make_run_starts_dg_dev_which_loads_the_workspace_without_warnings(tmp_path):
    """run.sh starts `dg dev -w workspace.yaml`; started so, Dagster loads the code location and
    its output has no SupersessionWarning."""
    assert (
        'run --frozen dg dev -w workspace.yaml -h 127.0.0.1 -p "$dagster_port"'
        in (ROOT / "scripts" / "run.sh").read_text()
    )
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "dg.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [Path(sys.executable).with_name("dg"), "dev", "-w", "workspace.yaml",
             "-h", "127.0.0.1", "-p", str(port)],
            cwd=ROOT, env={**os.environ, "DAGSTER_HOME": str(home)},
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 180
            while not (loaded := _loaded_locations(url)) and time.monotonic() < deadline:
                assert process.poll() is None, log_path.read_text()[-3000:]
                time.sleep(1)
        finally:
            os.killpg(process.pid, signal.SIGINT)  # Ctrl-C
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:  # the code server can ignore signals (notes)
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
    output = log_path.read_text()
    assert loaded == ["assignar_pipeline.definitions"], output[-3000:]
    assert "SupersessionWarning" not in output
    assert "Warning" not in output.replace("Sync Warning", "")

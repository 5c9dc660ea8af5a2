"""The simulator's state file (`simulator serve --state`): a restarted simulator resumes the same
tenant with every change made through the control plane, byte for byte, from a file that holds
the config and the changes but no rows."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import orjson

from assignar_pipeline.simulator import Simulator, SimulatorServer, TenantConfig
from assignar_pipeline.simulator import resources as res
from assignar_pipeline.simulator.journal import StateFile, StateFileError
from assignar_pipeline.simulator.state import resume

from .conftest import CLIENT_ID, CLIENT_SECRET, TOKEN_FORM

TINY = TenantConfig(workers=4, projects=3, days=10, orders=20)
TS = "timesheets-expanded"


def snapshot(base_url: str) -> dict[str, list[bytes]]:
    """Every list endpoint's raw response bodies, in id order and in storage order (which an
    edit changes), plus the simulated now."""
    with httpx.Client(base_url=base_url, timeout=30) as http:
        token = http.post("/oauth2/token", data=TOKEN_FORM, auth=(CLIENT_ID, CLIENT_SECRET))
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        bodies: dict[str, list[bytes]] = {}
        for spec in res.ALL:
            for order in ({"sort": "id"}, {}):
                pages = bodies.setdefault(f"{spec.list_path} {order}", [])
                for page in range(1, 100):
                    params = {**order, "page": page, "page_size": 1000}
                    resp = http.get("/v2" + spec.list_path, params=params, headers=headers)
                    assert resp.status_code == 200, resp.text
                    pages.append(resp.content)
                    if len(pages[-1]) < 100:  # an empty page ends the list
                        break
        bodies["now"] = [orjson.dumps(http.get("/_simulator/stats").json()["now"])]
    return bodies


def change_through_the_control_plane(base_url: str) -> int:
    """An edit of a timesheet's hours, simulated time passing, an insert and a delete: what a
    demo user does through the control plane. Returns the edited timesheet's id."""
    with httpx.Client(base_url=base_url + "/_simulator", timeout=30) as http:
        stats = http.get("/stats").json()
        assert stats["records"][TS] > 2
        edited = 500001
        resp = http.patch(f"/records/{TS}/{edited}", json={"total_time": "01:15"})
        assert resp.status_code == 200, resp.text
        assert http.post("/advance", json={"minutes": 150}).status_code == 200
        resp = http.post("/records/projects", json={"name": "Added by hand", "active": True})
        assert resp.status_code == 200, resp.text
        assert http.delete(f"/records/{TS}/500002").json() == {"deleted": True}
    return edited


def test_a_restarted_simulator_serves_its_changes_byte_for_byte(tmp_path):
    """Edit, advance, insert and delete, stop, resume from the state file: every list endpoint
    answers byte for byte as before the restart; a regenerated tenant would not."""
    path = tmp_path / "simulator.jsonl"
    with SimulatorServer(resume(path, TINY)) as server:
        edited = change_through_the_control_plane(server.base_url)
        before = snapshot(server.base_url)

    with SimulatorServer(resume(path)) as server:
        after = snapshot(server.base_url)
        assert server.simulator.get(TS, edited)["total_time"] == "01:15"

    assert after == before
    with SimulatorServer(Simulator(TINY)) as regenerated:
        assert snapshot(regenerated.base_url) != before


def test_the_state_file_holds_the_config_and_the_changes_not_rows(tmp_path):
    """The file is a header with the tenant's config and one line per change: its size does not
    grow with the tenant (the large tenant must not write gigabytes)."""
    path = tmp_path / "simulator.jsonl"
    with SimulatorServer(resume(path, TINY)) as server:
        change_through_the_control_plane(server.base_url)
    lines = path.read_bytes().splitlines()
    assert [orjson.loads(line).get("op") for line in lines] == [
        None,
        "update",
        "advance",
        "insert",
        "delete",
    ]
    assert orjson.loads(lines[0])["config"]["now"] == TINY.now.isoformat()
    assert path.stat().st_size < 2_000


def test_a_reset_starts_the_state_file_afresh_with_its_config(tmp_path):
    """`POST /_simulator/reset` with another seed rewrites the file: a restart serves the new
    tenant without the changes made before the reset."""
    path = tmp_path / "simulator.jsonl"
    with SimulatorServer(resume(path, TINY)) as server:
        change_through_the_control_plane(server.base_url)
        httpx.post(server.control_url + "/reset", json={"seed": 2}).raise_for_status()
        before = snapshot(server.base_url)
    assert len(path.read_bytes().splitlines()) == 1
    with SimulatorServer(resume(path)) as server:
        assert server.simulator.config.seed == 2
        assert snapshot(server.base_url) == before


def test_changes_made_by_faults_are_not_kept_and_do_not_break_the_replay(tmp_path):
    """The churn fault edits, copies and deletes records while a list is read; those are a
    test's instruments, so the state file keeps none of them and still replays cleanly."""
    path = tmp_path / "simulator.jsonl"
    with SimulatorServer(resume(path, TINY)) as server:
        change_through_the_control_plane(server.base_url)
        expected = snapshot(server.base_url)
        httpx.post(server.control_url + "/faults", json={"kind": "churn"}).raise_for_status()
        assert snapshot(server.base_url) != expected  # the churn happened
    with SimulatorServer(resume(path)) as server:
        assert snapshot(server.base_url) == expected


def test_an_unfinished_last_line_is_dropped_and_a_broken_one_refused(tmp_path):
    """A change cut off by a crash (never answered) is dropped with a warning and cut from the
    file; a line that is not JSON in the middle is refused with the file's name and the fix."""
    path = tmp_path / "simulator.jsonl"
    with SimulatorServer(resume(path, TINY)) as server:
        change_through_the_control_plane(server.base_url)
    complete = path.read_bytes()
    path.write_bytes(complete + b'{"op": "upd')

    config, changes, warning = StateFile(path).read()
    assert config == TINY and len(changes) == 4
    assert warning is not None and "unfinished last line" in warning
    assert path.read_bytes() == complete

    lines = complete.splitlines()
    path.write_bytes(b"\n".join([lines[0], b"not json", *lines[1:]]) + b"\n")
    try:
        resume(path)
    except StateFileError as exc:
        assert str(path) in str(exc) and "line 2 is not valid JSON" in str(exc)
        assert "start a new tenant" in str(exc)
    else:
        raise AssertionError("a broken state file was accepted")


def _serve(*args: str) -> subprocess.Popen[str]:
    script = "import sys; from assignar_pipeline.cli import main; main(sys.argv[1:])"
    return subprocess.Popen(
        [sys.executable, "-c", script, "simulator", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _base_url(proc: subprocess.Popen[str]) -> str:
    line = proc.stdout.readline()  # type: ignore[union-attr]
    assert line.startswith("API URL:"), line + proc.stderr.read()  # type: ignore[union-attr]
    return line.split()[-1].removesuffix("/v2")


def _stop(proc: subprocess.Popen[str]) -> str:
    """SIGTERM, as `make run` stops it; returns what it printed on stderr."""
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    return err


def test_serve_with_state_resumes_the_tenant_after_a_restart(tmp_path: Path):
    """`simulator serve --state FILE`: started with a `--now`, changed, stopped with SIGTERM and
    started again without tenant options, it serves the same data and now byte for byte."""
    path = tmp_path / "data" / "simulator.jsonl"
    tenant = ["--workers", "4", "--projects", "3", "--days", "10", "--orders", "20"]
    proc = _serve("--state", str(path), "--now", "2025-06-02T05:00:00Z", *tenant)
    try:
        base_url = _base_url(proc)
        change_through_the_control_plane(base_url)
        before = snapshot(base_url)
    finally:
        first_err = _stop(proc)
    assert "Generating tenant" in first_err

    proc = _serve("--state", str(path))
    try:
        after = snapshot(_base_url(proc))
    finally:
        err = _stop(proc)
    assert after == before
    assert orjson.loads(after["now"][0]) == "2025-06-02T07:30:00.000Z"  # + 150 minutes
    assert f"Resuming the tenant kept in {path}" in err
    assert "Replayed 4 change(s)" in err


def test_serve_refuses_tenant_options_that_contradict_the_state_file(tmp_path: Path):
    """A `--now` (or any tenant option) other than the kept tenant's is refused with what to do,
    instead of silently serving another tenant than asked for."""
    path = tmp_path / "simulator.jsonl"
    StateFile(path).restart(TINY)
    proc = _serve("--state", str(path), "--now", "2026-01-01T00:00:00Z")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "--now ask for another tenant than the one kept in" in err
    assert "delete the file to start a new tenant" in err


def test_a_change_that_cannot_be_replayed_is_refused_with_its_line(tmp_path):
    """A change that does not apply to the regenerated tenant (an edited file, another version)
    stops the start with the file, the line and the fix, rather than serving half a state."""
    path = tmp_path / "simulator.jsonl"
    StateFile(path).restart(TINY)
    StateFile(path).append(orjson.dumps({"op": "advance", "minutes": 30}))
    StateFile(path).append(orjson.dumps({"op": "update", "resource": TS, "id": 1, "changes": {}}))
    try:
        resume(path)
    except StateFileError as exc:
        assert f"{path} line 3 cannot be replayed" in str(exc)
        assert "start a new tenant" in str(exc)
    else:
        raise AssertionError("a change to a record that does not exist was replayed")

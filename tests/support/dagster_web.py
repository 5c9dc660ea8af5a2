"""A real Dagster webserver on a test's instance, for what only its GraphQL API does (launching
backfills): `dagster-webserver` on the workspace, in a process group of its own."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def dagster_webserver(home: str | Path, log_path: Path) -> Iterator[str]:
    """The webserver's URL, serving the instance whose home is `home` (DAGSTER_HOME)."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [Path(sys.executable).with_name("dagster-webserver"), "-w", "workspace.yaml",
             "-h", "127.0.0.1", "-p", str(port)],
            cwd=ROOT,
            env={**os.environ, "DAGSTER_HOME": str(home), "DAGSTER_URL": url},
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 240
            while True:
                try:
                    if httpx.get(f"{url}/server_info", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert process.poll() is None, log_path.read_text()[-3000:]
                if time.monotonic() > deadline:
                    raise TimeoutError("dagster-webserver did not answer within 240 s")
                time.sleep(1)
            yield url
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)

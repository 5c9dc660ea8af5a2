"""Processes the benchmark starts, and the peak resident memory of each and of its descendants.

A sampler thread walks /proc every half second from the benchmark's own process down (Dagster's
webserver, daemon and code servers, the run workers a code server starts and their step
processes; PostgreSQL's backends; the simulator; the fetch limit and the peer) and keeps each
process's peak RSS, when it was first seen, and a role read from its command line or, for the
processes Dagster starts through multiprocessing, from its place in the tree.
"""

from __future__ import annotations

import os
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROLES = (
    ("simulator serve", "simulator"),
    ("bench.peer_dlt", "dlt (peer)"),
    ("bench.limits", "fetch limit"),
    ("py-spy", "py-spy (profiler)"),
    ("execute_run", "run worker"),
    ("execute_step", "step process"),
    ("dagster-webserver", "webserver"),
    ("dagster_webserver", "webserver"),
    ("dagster-daemon", "daemon"),
    ("dagster._daemon", "daemon"),
    ("api grpc", "code server"),
    ("code-server", "code server"),
    ("dagster dev", "dagster dev"),
)


def role_of(cmdline: str) -> str:
    # Dagster's command lines carry the instance's config, PostgreSQL URLs included.
    if cmdline.startswith("postgres") or "bin/postgres " in cmdline:
        return "PostgreSQL"
    for needle, role in ROLES:
        if needle in cmdline:
            return role
    return "other"


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a live process has used so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _read(pid: int) -> tuple[int, int, str] | None:
    """(parent pid, RSS in kB, command line) of a live process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        rss = 0
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
                break
        cmd = (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
        return ppid, rss, cmd
    except (OSError, ValueError, IndexError):
        return None


@dataclass
class Peak:
    role: str
    cmdline: str
    rss_kb: int = 0
    first_seen: float = 0.0


@dataclass
class Sampler:
    """Peak RSS per process under the given root pids (default: this process's children)."""

    interval: float = 0.5
    peaks: dict[int, Peak] = field(default_factory=dict)
    #: Processes that are not our descendants but ours all the same (PostgreSQL's postmaster
    #: detaches from pg_ctl): their trees are sampled too.
    extra_roots: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Sampler:
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)

    def _loop(self) -> None:
        me = os.getpid()
        while not self._stop.wait(self.interval):
            self.sample(me)

    def sample(self, root: int) -> None:
        table: dict[int, tuple[int, int, str]] = {}
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                info = _read(int(entry.name))
                if info:
                    table[int(entry.name)] = info
        children: dict[int, list[int]] = defaultdict(list)
        for pid, (ppid, _, _) in table.items():
            children[ppid].append(pid)
        stack: list[tuple[int, str]] = [(c, "") for c in children[root]]
        stack += [(pid, "") for pid in self.extra_roots if pid in table]
        now = time.monotonic()
        while stack:
            pid, parent_role = stack.pop()
            _, rss, cmd = table[pid]
            role = role_of(cmd)
            if role == "other" and "multiprocessing" in cmd:
                # Dagster's default launcher starts a run in a child of the code server, and
                # the multiprocess executor each step in a child of the run.
                role = {"code server": "run worker", "run worker": "step process"}.get(
                    parent_role, "other"
                )
            peak = self.peaks.get(pid)
            if peak is None or peak.cmdline != cmd:  # pids are reused
                peak = self.peaks[pid] = Peak(role, cmd, 0, now)
            peak.rss_kb = max(peak.rss_kb, rss)
            stack += [(c, role) for c in children[pid]]

    def by_role(
        self, since: float = 0.0, until: float = float("inf")
    ) -> dict[str, tuple[int, float]]:
        """Role → (processes, largest peak in MB) over processes first seen in [since, until)."""
        out: dict[str, tuple[int, float]] = {}
        for p in list(self.peaks.values()):
            if since <= p.first_seen < until:
                n, mb = out.get(p.role, (0, 0.0))
                out[p.role] = (n + 1, max(mb, p.rss_kb / 1024))
        return out


def wait_for(predicate, timeout: float, what: str, every: float = 0.5):
    """Poll until `predicate()` is truthy; its value, or TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"{what} did not happen within {timeout:.0f} s")

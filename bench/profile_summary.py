"""Condense py-spy's raw output of the full import into a small folded file and a summary.

py-spy names each process frame by its whole command line (Dagster's carry the instance's
config) and each function by its absolute path. This keeps a role per process (as bench/procs.py
names them), paths from the package down, and writes:

- `full_import.folded.gz`: folded stacks making up 99% of the samples (`zcat` it into
  flamegraph.pl, speedscope or inferno);
- `full_import.md`: samples per role, and the functions that take the run processes' time.
"""

from __future__ import annotations

import gzip
import re
import sys
from collections import Counter
from pathlib import Path

from bench.procs import role_of

PROCESS = re.compile(r'^process \d+:"(.*)"$', re.S)
FRAME = re.compile(r"^(?P<fn>.*) \((?P<path>.*):(?P<line>\d+)\)$")
RUN_ROLES = ("run worker", "step process")


def short_path(path: str) -> str:
    for marker in ("site-packages/", "/lib/python3"):
        if marker in path:
            return path.split(marker, 1)[1]
    for package in ("assignar_pipeline/", "assets/", "resources/", "sensors/", "schedules/",
                    "bench/"):  # fmt: skip
        if package in path:
            return package + path.split(package, 1)[1]
    return Path(path).name


def _frames(stack: str) -> list[str]:
    """Split a folded stack at ';', keeping a process frame whose command line has ';' whole."""
    out: list[str] = []
    for token in stack.split(";"):
        if out and out[-1].startswith("process ") and not PROCESS.match(out[-1]):
            out[-1] += ";" + token
        else:
            out.append(token)
    return out


def condense(raw: Path) -> Counter:
    stacks: Counter = Counter()
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames, parent = [], ""
        for frame in _frames(stack):
            process = PROCESS.match(frame)
            if process:
                role = role_of(process.group(1))
                if role == "other" and "multiprocessing" in process.group(1):
                    role = {"code server": "run worker", "run worker": "step process"}.get(
                        parent, "other"
                    )
                parent = role
                frames.append(f"[{role}]")
                continue
            found = FRAME.match(frame)
            if found:
                frames.append(f"{found['fn']} ({short_path(found['path'])})")
            else:
                frames.append(frame)
        stacks[";".join(frames)] += int(count)
    return stacks


#: Leaf frames of threads that wait (py-spy samples some waiting threads as busy when it follows
#: subprocesses): left out of the figures.
WAITING = ("Condition.wait", "Event.wait", "_worker (thread.py", "select (selectors.py",
           "_PollLikeSelector.select", "_serve (_server.py", "time.sleep", "check_daemon_loop",
           "_watch_pipe_for_shutdown", "_blocking (_channel.py", "poll (popen_fork.py")  # fmt: skip


def busy(stacks: Counter) -> Counter:
    return Counter(
        {s: n for s, n in stacks.items() if not s.rsplit(";", 1)[-1].startswith(WAITING)}
    )


def summary(stacks: Counter) -> str:
    total = sum(stacks.values())
    roles: Counter = Counter()
    own: Counter = Counter()
    inclusive: Counter = Counter()
    run_total = 0
    for stack, n in stacks.items():
        frames = stack.split(";")
        role = next((f for f in reversed(frames) if f.startswith("[")), "[?]")
        roles[role] += n
        if role.strip("[]") in RUN_ROLES:
            run_total += n
            leaf = frames[-1]
            own[leaf] += n
            seen = set()
            for frame in frames:
                ours = "assignar_pipeline/" in frame or "assets/" in frame
                if frame.startswith("[") or not ours:
                    continue
                if frame not in seen:
                    inclusive[frame] += n
                    seen.add(frame)
    lines = [f"{total:,} samples of busy threads (20 per second per process; waiting threads "
             "left out).", "",
             "| process role | samples | share |", "|---|---|---|"]  # fmt: skip
    lines += [f"| {r.strip('[]')} | {n:,} | {n / total:.0%} |" for r, n in roles.most_common()]
    lines += ["", "Run processes, where their time goes (our code, inclusive):", "",
              "| function | share of run processes |", "|---|---|"]  # fmt: skip
    lines += [f"| `{f}` | {n / max(run_total, 1):.0%} |" for f, n in inclusive.most_common(25)]
    lines += ["", "Run processes, leaf functions (self time):", "", "| function | share |",
              "|---|---|"]  # fmt: skip
    lines += [f"| `{f}` | {n / max(run_total, 1):.1%} |" for f, n in own.most_common(25)]
    return "\n".join(lines) + "\n"


def main(raw: Path) -> None:
    stacks = busy(condense(raw))
    # The stacks that make up 99% of the samples: the rest is a long tail of one-off stacks
    # that would make the file megabytes without changing the picture.
    kept, total, running = [], sum(stacks.values()), 0
    for stack, n in stacks.most_common():
        if running >= 0.99 * total:
            break
        kept.append(f"{stack} {n}\n")
        running += n
    with gzip.open(raw.with_suffix(".folded.gz"), "wt") as out:
        out.write("".join(kept))
    raw.unlink()
    title = f"# Profile of the full import (py-spy, {raw.stem})\n\n"
    raw.with_suffix(".md").write_text(title + summary(stacks))


if __name__ == "__main__":
    main(Path(sys.argv[1]))

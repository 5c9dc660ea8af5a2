"""Condense py-spy's raw output of the full import into a small folded file and a summary.

py-spy names each process frame by its whole command line (Dagster's carry the instance's
config) and each function by its absolute path. This keeps a role per process (as bench/procs.py
names them), paths from the package down, and writes:

- `full_import.folded`: folded stacks making up 99% of the samples (flamegraph.pl, speedscope
  and inferno read them);
- `full_import.md`: samples per role, and the functions that take the run processes' time.
"""

from __future__ import annotations

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
                frames.append(f"{found['fn']} ({short_path(found['path'])}:{found['line']})")
            else:
                frames.append(frame)
        stacks[";".join(frames)] += int(count)
    return stacks


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
            own[re.sub(r":\d+\)$", ")", leaf)] += n
            seen = set()
            for frame in frames:
                ours = "assignar_pipeline/" in frame or "assets/" in frame
                if frame.startswith("[") or not ours:
                    continue
                name = re.sub(r":\d+\)$", ")", frame)
                if name not in seen:
                    inclusive[name] += n
                    seen.add(name)
    lines = [f"{total:,} samples of busy threads (20 per second per process).", "",
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
    stacks = condense(raw)
    # The stacks that make up 99% of the samples: the rest is a long tail of one-off stacks
    # that would make the file megabytes without changing the picture.
    kept, total, running = [], sum(stacks.values()), 0
    for stack, n in stacks.most_common():
        if running >= 0.99 * total:
            break
        kept.append(f"{stack} {n}\n")
        running += n
    raw.write_text("".join(kept))
    raw.with_suffix(".md").write_text("# Profile of the full import (py-spy)\n\n" + summary(stacks))


if __name__ == "__main__":
    main(Path(sys.argv[1]))

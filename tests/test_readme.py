"""The READMEs' commands exist as written: every shell line is a make target, a project program in
.venv/bin (never `uv run`, since uv may not be on a new shell's PATH) whose command and options
the CLI accepts, a module that exists, or curl; so the READMEs cannot drift from the CLI."""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path

import click
import pytest

from assignar_pipeline.cli import main

ROOT = Path(__file__).resolve().parents[1]
READMES = [ROOT / "README.md", ROOT / "assignar_pipeline" / "simulator" / "README.md"]
CLI = ".venv/bin/assignar-pipeline"
FENCE = re.compile(r"^\s*```(\w*)\s*$")
INLINE = re.compile(r"`((?:\.venv/bin/)?assignar-pipeline [^`]+)`")
ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=")


def shell_commands(path: Path) -> list[tuple[int, str]]:
    """(line number, command) for each command in the file's ```sh blocks, continuation lines
    joined; what an `export` line sets is prefixed to the block's later commands."""
    commands: list[tuple[int, str]] = []
    in_sh = in_other = False
    pending, start, exported = "", 0, ""
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        fence = FENCE.match(line)
        if fence and not (in_sh or in_other):
            in_sh, in_other = fence.group(1) == "sh", fence.group(1) != "sh"
            continue
        if fence:
            in_sh = in_other = False
            exported = ""
            continue
        if not in_sh or not (pending or line.strip()):
            continue
        start = start or number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        command = pending + line.strip()
        if command.startswith("export "):
            exported += command.removeprefix("export ") + " "
        else:
            commands.append((start, exported + command))
        pending, start = "", 0
    return commands


def inline_commands(path: Path) -> list[tuple[int, str]]:
    """Commands of ours quoted in the prose, e.g. `.venv/bin/assignar-pipeline status`."""
    return [
        (number, match.group(1))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        for match in INLINE.finditer(line)
    ]


def words(command: str) -> list[str]:
    """The command's words with the README's notation for optional parts taken as given:
    `[--connection demo]` → `--connection demo`, `[--orders/--no-orders]` → `--orders`."""
    out = []
    for word in shlex.split(command, comments=True):
        word = word.strip("[]")
        if word.startswith("--") and "/" in word:
            word = word.split("/")[0]
        if word and word != "...":
            out.append(word)
    return out


def parse(args: list[str], *, strict: bool) -> click.Command:
    """Resolve `args` against the CLI as click would run them (types, choices, unknown options,
    extra arguments; with `strict` also the required options), without running the command."""
    command: click.Command = main
    path = ["assignar-pipeline"]
    while isinstance(command, click.Group):
        name, args = args[0], args[1:]
        sub = command.get_command(click.Context(command), name)
        if sub is None:
            raise click.UsageError(f"no command {' '.join([*path, name])!r}")
        command, path = sub, [*path, name]
    if strict:
        command.make_context(" ".join(path), list(args))
    else:
        known = {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)}
        for word in args:
            if word.startswith("-") and word.split("=")[0] not in known:
                raise click.UsageError(f"{' '.join(path)} has no option {word}")
    return command


def make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.M))


SHELL_LINES = [(p, n, c) for p in READMES for n, c in shell_commands(p)]
INLINE_LINES = [(p, n, c) for p in READMES for n, c in inline_commands(p)]


def _id(case: tuple[Path, int, str]) -> str:
    return f"{case[0].relative_to(ROOT)}:{case[1]}"


def test_the_readmes_show_commands():
    """The extraction finds the READMEs' commands (an empty list would make the checks vacuous)."""
    programs = [words(c)[0] for _, _, c in SHELL_LINES if words(c)]
    assert programs.count(CLI) >= 25 and "make" in programs and "curl" in programs
    assert len(INLINE_LINES) >= 3


@pytest.mark.parametrize("case", SHELL_LINES, ids=_id)
def test_each_shell_command_runs_as_written_in_a_new_shell(case, monkeypatch):
    """Each line of a ```sh block names a make target, one of our commands with options the CLI
    accepts, a module that exists, or curl; our programs are called from .venv/bin."""
    _, _, command = case
    args = words(command)
    while args and ASSIGNMENT.match(args[0]):
        monkeypatch.setenv(*args.pop(0).split("=", 1))
    program, rest = args[0], args[1:]
    assert program not in ("uv", "assignar-pipeline", "python", "dagster", "dg"), (
        f"{command!r}: call the project's programs as .venv/bin/{program}: uv and the "
        "virtualenv are not on a new shell's PATH"
    )
    if program == CLI:
        parse(rest, strict=True)
    elif program == "make":
        targets = [w for w in rest if not ASSIGNMENT.match(w)]
        assert set(targets) <= make_targets(), f"{command!r}: no such make target"
    elif program == ".venv/bin/python":
        assert rest[0] == "-m" and importlib.util.find_spec(rest[1]), f"{command!r}"
    elif program == ".venv/bin/dg":
        assert rest[:1] == ["dev"], f"{command!r}"
    else:
        assert program == "curl", f"{command!r}: a command this test does not know how to check"


@pytest.mark.parametrize("case", INLINE_LINES, ids=_id)
def test_each_command_quoted_in_the_prose_exists(case):
    """`assignar-pipeline ...` in the prose names an existing command and options."""
    _, _, command = case
    args = words(command)
    parse(args[1:], strict=False)


def test_a_command_the_cli_does_not_know_is_caught():
    """The check fails for an unknown command, an unknown option or a bad choice."""
    for args in (["sync-now"], ["status", "--conection", "demo"], ["connect", "--region", "eu"]):
        with pytest.raises(click.UsageError):
            parse(args, strict=True)

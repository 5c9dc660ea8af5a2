"""The simulator's state file: the tenant's config and a journal of the changes made to it.

A restarted simulator regenerates the tenant from the config (generation is deterministic) and
replays the journal, so it serves byte for byte what it served before it stopped. Only the
config and the changes are written, never rows: the large tenant's rows are gigabytes, its
journal a few lines.

The file is JSON Lines: a header `{"format", "version", "config"}`, then one change per line
(`insert`, `update`, `delete`, `advance`), each written and fsynced before the change is answered.
A reset rewrites the file with the new config and no changes.
"""

from __future__ import annotations

import os
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import orjson

from .data import TenantConfig
from .timeutil import parse_datetime

FORMAT = "assignar-simulator-state"
VERSION = 1
OPS = ("insert", "update", "delete", "advance")


class StateFileError(ValueError):
    """A state file that cannot be read; the message names the file and what to do."""


def config_to_json(config: TenantConfig) -> dict[str, Any]:
    values = {f.name: getattr(config, f.name) for f in fields(config)}
    values["now"] = config.now.isoformat()
    values["timezones"] = list(config.timezones)
    return values


def config_from_json(values: dict[str, Any]) -> TenantConfig:
    known = {f.name for f in fields(TenantConfig)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown tenant settings {sorted(unknown)}")
    config = replace(TenantConfig(), **values)
    return replace(config, now=parse_datetime(str(config.now)), timezones=tuple(config.timezones))


class StateFile:
    """An open state file that changes are appended to."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, path: Path, config: TenantConfig) -> StateFile:
        state = cls(path)
        state.restart(config)
        return state

    def restart(self, config: TenantConfig) -> None:
        """Replace the file with a header for `config` and no changes (atomically: a crash
        leaves the old file or the new one)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        header = {"format": FORMAT, "version": VERSION, "config": config_to_json(config)}
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("wb") as f:
            f.write(orjson.dumps(header) + b"\n")
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(self.path)

    def append(self, line: bytes) -> None:
        """Add one change (a JSON line without its newline), durable before this returns."""
        with self.path.open("ab") as f:
            f.write(line + b"\n")
            f.flush()
            os.fsync(f.fileno())

    def read(self) -> tuple[TenantConfig, list[dict[str, Any]], str | None]:
        """The config, the changes, and a warning when an unfinished last line (the process
        died while writing it, so the change was never answered) was dropped."""
        raw = self.path.read_bytes()
        warning = None
        if raw and not raw.endswith(b"\n"):
            complete = raw[: raw.rfind(b"\n") + 1]
            if not complete:
                raise self._error("has no complete header line")
            # Cut it off now, or the next change would be appended to the broken line.
            with self.path.open("r+b") as f:
                f.truncate(len(complete))
            warning = (
                f"{self.path}: dropped an unfinished last line ({len(raw) - len(complete)} "
                "bytes): the change it began was never answered"
            )
            raw = complete
        lines = raw.splitlines()
        if not lines:
            raise self._error("is empty")
        header = self._json(lines[0], 1)
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise self._error(f"is not a simulator state file (no {FORMAT!r} header)")
        if header.get("version") != VERSION:
            found = header.get("version")
            raise self._error(f"has version {found!r}; this simulator reads {VERSION}")
        try:
            config = config_from_json(header["config"])
        except (KeyError, TypeError, ValueError) as exc:
            raise self._error(f"has an unreadable tenant config ({exc})") from None
        ops = []
        for number, line in enumerate(lines[1:], start=2):
            op = self._json(line, number)
            if not isinstance(op, dict) or op.get("op") not in OPS:
                raise self._error(f"line {number} is not a change ({', '.join(OPS)})")
            ops.append(op)
        return config, ops, warning

    def _json(self, line: bytes, number: int) -> Any:
        try:
            return orjson.loads(line)
        except orjson.JSONDecodeError:
            raise self._error(f"line {number} is not valid JSON") from None

    def _error(self, problem: str) -> StateFileError:
        return StateFileError(
            f"The simulator state file {self.path} {problem}. Move it away (or delete it) to "
            "start a new tenant; a Pay database imported from the old one (make run: .data/) "
            "will then no longer match it, so start that afresh too."
        )

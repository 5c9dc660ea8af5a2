"""Fault injection: the misbehaviours a client of the Assignar API has to survive.

A fault applies to the next `count` matching requests (None: until cleared). Without a `path` it
matches requests under /v2 (and, for `maintenance` and `api_access_disabled`, the token endpoint);
with one it matches requests whose path starts with it. With `after_requests` n, it lets the first
n matching requests through (an action runs right after the n-th). Control endpoints are never
faulted.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

# Per-request faults, checked before the request is handled (first match wins).
PRE_KINDS = ("maintenance", "rate_limit", "server_error", "slow", "request_rate")
# Faults applied to the response once it has been produced.
POST_KINDS = ("drop", "malformed_json", "malformed_record")
# Modes: still counted per matching request, but default to "until cleared".
MODE_KINDS = ("wrong_region", "api_access_disabled", "drift", "request_rate")
# Changes to the tenant made right after a list page has been answered (the reader is mid-list).
CHURN_KINDS = ("churn",)
# Actions: immediate, or (with `after_requests`) stored and run once that many matching requests
# have been answered, so that they land in the middle of a run.
ACTION_KINDS = ("revoke_tokens", "rotate_credentials")
KINDS = frozenset((*PRE_KINDS, *POST_KINDS, *MODE_KINDS, *CHURN_KINDS, *ACTION_KINDS))
SERVER_ERROR_MESSAGES = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
API_PREFIX = "/v2/"
TOKEN_PATH = "/oauth2/token"  # noqa: S105 - a URL path, not a secret


class FaultError(ValueError):
    """An invalid fault definition."""


@dataclass
class Fault:
    kind: str
    remaining: int | None
    path: str | None
    params: dict[str, Any] = field(default_factory=dict)
    applied: int = 0
    waiting: int = 0  # matching requests still to let through before the fault starts
    # request_rate: recent request times per client key
    window: dict[str, deque[float]] = field(default_factory=dict)

    def matches(self, path: str) -> bool:
        if self.path is not None:
            return path.startswith(self.path)
        if path.startswith(API_PREFIX):
            return self.kind != "api_access_disabled"
        return path == TOKEN_PATH and self.kind in ("maintenance", "api_access_disabled")

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "count": self.remaining,
            "path": self.path,
            "applied": self.applied,
            **self.params,
        }


def validate(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """Checked and defaulted parameters for a fault kind."""
    if kind not in KINDS:
        raise FaultError(f"unknown fault kind {kind!r}; known: {sorted(KINDS)}")
    out = dict(params)
    if kind in ("rate_limit", "maintenance"):
        out["retry_after"] = int(out.get("retry_after", 1))
    elif kind == "server_error":
        status = int(out.get("status", 500))
        if status not in SERVER_ERROR_MESSAGES:
            raise FaultError(f"server_error status must be one of {sorted(SERVER_ERROR_MESSAGES)}")
        out["status"] = status
    elif kind == "slow":
        out["delay"] = float(out.get("delay", 1.0))
    elif kind == "drop":
        frac = float(out.get("fraction", 0.5))
        if not 0.0 <= frac < 1.0:
            raise FaultError("drop fraction must be in [0, 1)")
        out["fraction"] = frac
    if out.get("after_requests") is not None:
        after = out["after_requests"]
        if not isinstance(after, int) or after < 1:
            raise FaultError("after_requests must be a positive integer")
    if kind == "request_rate":
        rps = float(out.get("rps", 10))
        if rps <= 0:
            raise FaultError("request_rate rps must be positive")
        out["rps"] = rps
    return out


class Faults:
    """The active faults, in the order they were added."""

    def __init__(self) -> None:
        self.active: list[Fault] = []
        self.applied: Counter[str] = Counter()

    def add(self, kind: str, count: int | None, path: str | None, params: dict[str, Any]) -> Fault:
        params = validate(kind, params)
        if kind in ACTION_KINDS:
            if params.get("after_requests") is None:
                raise FaultError(f"{kind} is an immediate action unless after_requests is given")
            # Counts down matching requests; the action runs when the count reaches zero.
            count = params["after_requests"]
        if count is not None and count < 1:
            raise FaultError("count must be a positive integer or null")
        waiting = 0 if kind in ACTION_KINDS else params.get("after_requests") or 0
        fault = Fault(kind, count, path, params, waiting=waiting)
        self.active.append(fault)
        return fault

    def clear(self) -> None:
        self.active.clear()

    def take(self, kinds: tuple[str, ...], path: str, client_key: str = "") -> Fault | None:
        """The first active fault of one of `kinds` that applies to this request, consumed."""
        for fault in self.active:
            if fault.kind not in kinds or not fault.matches(path):
                continue
            if fault.kind == "request_rate" and not self._over_rate(fault, client_key):
                continue
            if fault.kind not in ACTION_KINDS and fault.waiting > 0:
                fault.waiting -= 1  # `after_requests`: let this many matching requests through
                continue
            self._consume(fault)
            return fault
        return None

    def _over_rate(self, fault: Fault, key: str) -> bool:
        # Sliding one-second window per client; requests over the limit are refused and not counted.
        now = time.monotonic()
        window = fault.window.setdefault(key, deque())
        while window and now - window[0] >= 1.0:
            window.popleft()
        if len(window) >= fault.params["rps"]:
            return True
        window.append(now)
        return False

    def _consume(self, fault: Fault) -> None:
        fault.applied += 1
        self.applied[fault.kind] += 1
        if fault.remaining is not None:
            fault.remaining -= 1
            if fault.remaining <= 0:
                self.active.remove(fault)

    def describe(self) -> list[dict[str, Any]]:
        return [f.describe() for f in self.active]

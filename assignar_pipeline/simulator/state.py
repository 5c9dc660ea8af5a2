"""The simulator's state object: tenant data, clock, credentials, faults and statistics.

Everything the HTTP control plane can do is a plain method here too, so in-process tests can drive
the simulator directly. All methods are thread-safe (the server runs in another thread).
"""

from __future__ import annotations

import secrets
import threading
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from . import resources as res
from .auth import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_TOKEN_TTL, Auth
from .data import TenantConfig, World, generate_world
from .faults import ACTION_KINDS, MODE_KINDS, Fault, Faults, validate
from .journal import StateFile, StateFileError
from .mutations import advance as apply_advance
from .query import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from .store import Record, RowEncoder, Table
from .timesheets import Embeds, generate, order_embed, user_embed
from .timeutil import from_epoch, iso_utc


class UnknownResource(KeyError):
    """A resource name that is not one of the simulated endpoints."""


class Simulator:
    """One simulated Assignar tenant."""

    def __init__(
        self,
        config: TenantConfig | None = None,
        *,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        token_ttl: int = DEFAULT_TOKEN_TTL,
        default_page_size: int = DEFAULT_PAGE_SIZE,
        max_page_size: int = MAX_PAGE_SIZE,
    ) -> None:
        self.lock = threading.RLock()
        self.config = config or TenantConfig()
        self.default_page_size = default_page_size
        self.max_page_size = max_page_size
        self._initial_credentials = (client_id, client_secret)
        self.auth = Auth(client_id, client_secret, token_ttl)
        self.faults = Faults()
        self.requests: defaultdict[str, Counter[int]] = defaultdict(Counter)
        self.rows_served = 0
        self.tables: dict[str, Table] = {}
        #: Where changes are kept across restarts (`keep_state`); None: in memory only.
        self.state_file: StateFile | None = None
        self._changing = 0
        self._load(self.config)

    # ----------------------------------------------------------------- lifecycle
    def _load(self, config: TenantConfig) -> None:
        world, records = generate_world(config)
        embeds = Embeds(records)
        tables: dict[str, Table] = {}
        for spec in (*res.ALL, *res.NESTED):
            table = Table(spec)
            if spec is res.TIMESHEETS:
                eager = spec.eager or spec.scalar_fields
                encoder = RowEncoder(spec)
                ids, blobs, cols = generate(world, embeds, eager, encoder)
                table.bulk_load(ids, blobs, cols, encoder)
                table.prepare_ready_fields()
            else:
                for rec in records[spec.key]:
                    table.put(rec)
            tables[spec.key] = table
        self.world: World = world
        self.embeds = embeds
        self.tables = tables

    def reset(self, config: TenantConfig | None = None) -> None:
        """Regenerate the tenant (same config unless given) and restore clock, credentials, faults
        and statistics. Tokens already issued stay valid unless credentials had been rotated."""
        with self.lock:
            if config is not None:
                self.config = config
            # Drop the old tenant first: at benchmark scale two copies would not fit in memory.
            self.tables = {}
            self._load(self.config)
            if self.state_file is not None:
                self.state_file.restart(self.config)
            client_id, secret = self._initial_credentials
            if (self.auth.client_id, self.auth.client_secret) != (client_id, secret):
                self.auth.set_credentials(client_id, secret)
            self.faults = Faults()
            self.requests.clear()
            self.rows_served = 0

    # ----------------------------------------------------------------- state file
    def keep_state(self, state: StateFile, changes: list[dict[str, Any]]) -> None:
        """Replay `changes` (read from `state`, made to this same config) and append every
        later change to `state`, so a restart can replay them all."""
        with self.lock:
            for number, op in enumerate(changes, start=2):
                try:
                    self._apply(op)
                except (KeyError, TypeError, ValueError) as exc:
                    raise StateFileError(
                        f"The simulator state file {state.path} line {number} cannot be replayed "
                        f"({exc!r}): another version of the simulator wrote it, or it was edited. "
                        "Move it away to start a new tenant (and start its Pay database afresh)."
                    ) from None
            self.state_file = state

    def _apply(self, op: dict[str, Any]) -> None:
        kind = op["op"]
        if kind == "advance":
            self.advance(op["minutes"])
        elif kind == "insert":
            self.insert(op["resource"], op["record"])
        elif kind == "update":
            self.update(op["resource"], op["id"], op["changes"])
        elif kind == "delete":
            self.delete(op["resource"], op["id"])
        else:
            raise ValueError(f"unknown change {kind!r}")

    @contextmanager
    def _change(self, op: dict[str, Any] | None) -> Iterator[None]:
        """One change under the lock. With a state file, the outermost change (not the inserts
        an `advance` makes, which its replay makes again) is written once it succeeded; `op`
        None changes data without recording it (the drift and churn faults)."""
        with self.lock:
            record = op is not None and self._changing == 0 and self.state_file is not None
            line = orjson.dumps(op) if record else b""  # not JSON: refused before any change
            self._changing += 1
            try:
                yield
            finally:
                self._changing -= 1
            if record:
                assert self.state_file is not None
                self.state_file.append(line)

    def unrecorded(self) -> AbstractContextManager[None]:
        """Changes made inside are not written to the state file (fault instruments)."""
        return self._change(None)

    # ----------------------------------------------------------------- clock
    @property
    def now_ts(self) -> int:
        return self.world.now_ts

    @property
    def now(self) -> datetime:
        return from_epoch(self.world.now_ts)

    def now_iso(self) -> str:
        return iso_utc(self.world.now_ts)

    def advance(self, minutes: int) -> dict[str, int]:
        """Move the simulated clock forward and apply the changes that happen meanwhile."""
        if minutes < 0:
            raise ValueError("the simulated clock only moves forward")
        with self._change({"op": "advance", "minutes": minutes}):
            return apply_advance(self, minutes)

    # ----------------------------------------------------------------- records
    def table(self, resource: str) -> Table:
        try:
            return self.tables[resource]
        except KeyError:
            raise UnknownResource(resource) from None

    def get(self, resource: str, rid: int) -> Record | None:
        with self.lock:
            return self.table(resource).get(rid)

    def records(self, resource: str) -> list[Record]:
        """All records of a resource in storage order."""
        with self.lock:
            return list(self.table(resource).records())

    def insert(self, resource: str, record: Record) -> Record:
        """Add a record. Missing fields are filled (null, or [] for arrays), a missing id gets the
        next free one and the modified field defaults to the simulated now."""
        with self._change({"op": "insert", "resource": resource, "record": record}):
            table = self.table(resource)
            spec = table.spec
            rec: Record = {}
            for name, kind in spec.fields.items():
                rec[name] = record.get(name, [] if kind == "arr" else None)
            for name in record:
                if name not in spec.fields:
                    raise ValueError(f"{resource} has no field {name!r}")
            if rec["id"] is None:
                rec["id"] = self.next_id(resource)
            if rec["id"] in table:
                raise ValueError(f"{resource} {rec['id']} already exists")
            if spec.modified_field and spec.modified_field not in record:
                rec[spec.modified_field] = self.now_iso()
            table.put(rec)
            self._refresh_dependents(resource, rec)
            return rec

    def next_id(self, resource: str) -> int:
        """A fresh id for a new record of `resource`, above every id handed out so far."""
        table = self.table(resource)
        kind = _id_kind(resource)
        rid = max(table.max_id() + 1, self.world.next_id.get(kind, 1))
        if kind:
            self.world.next_id[kind] = rid + 1
        return rid

    def update(self, resource: str, rid: int, changes: dict[str, Any]) -> Record:
        """Change fields of a record; it moves to the end of storage order and its modified field
        becomes the simulated now (unless `changes` sets it)."""
        with self._change({"op": "update", "resource": resource, "id": rid, "changes": changes}):
            table = self.table(resource)
            rec = table.get(rid)
            if rec is None:
                raise KeyError(f"{resource} {rid} not found")
            for name in changes:
                if name not in table.spec.fields:
                    raise ValueError(f"{resource} has no field {name!r}")
            rec.update(changes)
            rec["id"] = rid
            mf = table.spec.modified_field
            if mf and mf not in changes:
                rec[mf] = self.now_iso()
            table.put(rec)
            self._refresh_dependents(resource, rec)
            return rec

    def delete(self, resource: str, rid: int) -> bool:
        """Hard delete: the record disappears from lists and by-id GETs return 404."""
        with self._change({"op": "delete", "resource": resource, "id": rid}):
            return self.table(resource).delete(rid)

    def _refresh_dependents(self, resource: str, rec: Record) -> None:
        """Embedded copies follow their source, as the real API joins them at read time; the
        timesheets' own modified_time and storage position do not change."""
        ts = self.tables.get("timesheets-expanded")
        if ts is None:
            return
        emb = self.embeds
        if resource == "users":
            embed = user_embed(rec)
            if emb.same("user", rec["id"], embed):
                return
            emb.set_user(rec)
            self._rewrite(ts, ts.hash_idx["user_id"].get(rec["id"], {}), "user", embed)
        elif resource == "projects":
            embed = {"name": rec["name"], "external_id": rec["external_id"]}
            if emb.same("project", rec["id"], embed):
                return
            emb.set_project(rec)
            self._rewrite(ts, ts.hash_idx["project_id"].get(rec["id"], {}), "project", embed)
        elif resource == "clients":
            embed = {"name": rec["name"], "external_id": rec["external_id"]}
            if emb.same("client", rec["id"], embed):
                return
            emb.set_client(rec)
            col = ts.column("client_id")
            slots = [s for s in ts.order.values() if col[s] == rec["id"]]
            self._rewrite(ts, slots, "client", embed)
        elif resource == "orders":
            embed = order_embed(rec)
            if emb.same("order", rec["id"], embed):
                return
            emb.set_order(rec)
            col = ts.column("order_id")
            slots = [s for s in ts.order.values() if col[s] == rec["id"]]
            self._rewrite(ts, slots, "order", embed)
        elif resource == "tasks":
            embed = {"name": rec["name"], "external_id": rec["external_id"]}
            col = ts.column("task_id")
            slots = [s for s in ts.order.values() if col[s] == rec["id"]]
            self._rewrite(ts, slots, "task", embed)

    @staticmethod
    def _rewrite(ts: Table, slots: Any, key: str, embed: Record) -> None:
        for slot in list(slots):
            blob = ts.blobs[slot]
            if blob is None:
                continue
            row = orjson.loads(blob)
            row[key] = embed
            ts.replace_blob(row["id"], row)

    # ----------------------------------------------------------------- auth & faults
    def set_credentials(
        self, client_id: str | None = None, client_secret: str | None = None
    ) -> None:
        """Accept these credentials from now on; every token issued so far is revoked."""
        with self.lock:
            self.auth.set_credentials(client_id, client_secret)

    def revoke_tokens(self) -> None:
        with self.lock:
            self.auth.revoke_all()

    def add_fault(
        self, kind: str, count: int | str | None = "default", path: str | None = None, **params: Any
    ) -> dict[str, Any]:
        """Inject a fault (or run an action kind). `count` defaults to 1 for per-request faults
        and to None (until cleared) for modes."""
        with self.lock:
            if kind in ACTION_KINDS:
                params = validate(kind, params)
                if kind == "rotate_credentials":
                    params["client_secret"] = params.get("client_secret") or secrets.token_urlsafe(
                        24
                    )
                if params.get("after_requests") is not None:
                    return self.faults.add(kind, None, path, params).describe()
                return self.run_action(kind, params)
            if count == "default":
                count = None if kind in MODE_KINDS else 1
            assert count is None or isinstance(count, int)
            fault: Fault = self.faults.add(kind, count, path, params)
            return fault.describe()

    def run_action(self, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        """Revoke every token, or accept new credentials (which revokes them too)."""
        with self.lock:
            if kind == "revoke_tokens":
                self.auth.revoke_all()
                return {"kind": kind}
            self.auth.set_credentials(params.get("client_id"), params["client_secret"])
            return {**params, "kind": kind, "client_id": self.auth.client_id}

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    # ----------------------------------------------------------------- statistics
    def record_request(self, route: str, status: int, rows: int) -> None:
        with self.lock:
            self.requests[route][status] += 1
            self.rows_served += rows

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {
                "now": self.now_iso(),
                "requests": {
                    route: {str(k): v for k, v in sorted(c.items())}
                    for route, c in sorted(self.requests.items())
                },
                "tokens_issued": self.auth.issued,
                "rows_served": self.rows_served,
                "faults_applied": dict(self.faults.applied),
                "active_faults": self.faults.describe(),
                "records": {key: len(t) for key, t in self.tables.items()},
            }


def resume(path: Path, config: TenantConfig | None = None, **options: Any) -> Simulator:
    """The tenant kept in the state file at `path` with its changes replayed, or a new state
    file for `config` when there is none; later changes are appended to it."""
    state = StateFile(path)
    changes: list[dict[str, Any]] = []
    if path.exists():
        config, changes, _ = state.read()
    else:
        state.restart(config or TenantConfig())
    sim = Simulator(config, **options)
    sim.keep_state(state, changes)
    return sim


def _id_kind(resource: str) -> str:
    return {
        "users": "user",
        "projects": "project",
        "clients": "client",
        "orders": "order",
        "timesheets-expanded": "timesheet",
    }.get(resource, "")

"""Raw ASGI app: the Assignar API under /v2, the token endpoint and the /_simulator control plane.

No framework: routing is a dictionary lookup and list pages are joins of pre-serialised rows, so
the server keeps well ahead of any client reading it.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

import orjson

from . import resources as res
from .data import TenantConfig
from .faults import (
    ACTION_KINDS,
    CHURN_KINDS,
    POST_KINDS,
    PRE_KINDS,
    SERVER_ERROR_MESSAGES,
    Fault,
    FaultError,
)
from .mutations import churn, drift
from .query import Query, QueryError, execute, parse_query
from .state import Simulator, UnknownResource
from .store import Table
from .timeutil import parse_datetime

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

API_PREFIX = "/v2"
TOKEN_PATH = "/oauth2/token"  # noqa: S105 - a URL path, not a secret
CONTROL_PREFIX = "/_simulator/"
JSON = b"application/json; charset=utf-8"

LIST_ROUTES: dict[str, res.ResourceSpec] = {API_PREFIX + r.list_path: r for r in res.ALL}
ITEM_PREFIXES: tuple[tuple[str, res.ResourceSpec], ...] = tuple(
    (API_PREFIX + r.item_prefix, r) for r in res.ALL
)
#: /v2/{parent}/{id}/{child} lists: (parent prefix, child suffix, parent spec, child spec).
NESTED_ROUTES: tuple[tuple[str, str, res.ResourceSpec, res.ResourceSpec], ...] = (
    (API_PREFIX + "/tasks/", "/pay-rate-groups", res.TASKS, res.PAY_RATE_GROUPS),
)


class DropConnection(Exception):
    """Raised after a partial body so the server closes the connection mid-response."""


class _DropFilter(logging.Filter):
    """Keep the deliberate mid-response disconnects out of uvicorn's error log."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DropConnection)


def quiet_uvicorn_drops() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _DropFilter) for f in logger.filters):
        logger.addFilter(_DropFilter())


def _dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


def _msg(status: int, text: str) -> bytes:
    return _dumps({"status": status, "message": f"[{status}] {text}"})


UNAUTHORIZED = _msg(401, "Unauthorized")


class Response:
    __slots__ = ("body", "headers", "resource", "rows", "status")

    def __init__(
        self,
        status: int,
        body: bytes,
        headers: list[tuple[bytes, bytes]] | None = None,
        rows: int = 0,
        resource: res.ResourceSpec | None = None,
    ) -> None:
        self.status = status
        self.body = body
        self.headers = headers or []
        self.rows = rows  # records in the body (statistics; record faults need at least one)
        self.resource = resource


def not_found(label: str, rid: str) -> Response:
    body = {
        "errorType": "NotFoundError",
        "errorMessage": f"[404] Object Not Found - {label} (id:{rid})",
        "trace": [],
    }
    return Response(404, _dumps(body))


def route_not_found(method: str, path: str) -> Response:
    body = {
        "errorType": "NotFoundError",
        "errorMessage": f"[404] Route Not Found - {method} {path}",
        "trace": [],
    }
    return Response(404, _dumps(body))


class SimulatorApp:
    """ASGI callable serving one `Simulator`."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if path.startswith(CONTROL_PREFIX):
            resp = await self._control(scope, receive)
            await _send(send, resp)
            return
        await self._serve(scope, receive, send)

    @staticmethod
    async def _lifespan(receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    # ----------------------------------------------------------------- API + token
    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        sim = self.sim
        path: str = scope["path"]
        method: str = scope["method"]
        headers = _headers(scope)
        authorization = headers.get("authorization")
        client_key = authorization or str((scope.get("client") or ("", 0))[0])
        route = _route_name(method, path)

        with sim.lock:
            pre = sim.faults.take(PRE_KINDS, path, client_key)
        if pre is not None and pre.kind == "slow":
            await asyncio.sleep(pre.params["delay"])
            pre = None
        list_query: tuple[str, Query, list[int]] | None = None
        if pre is not None:
            resp = _pre_fault_response(pre)
        elif path == TOKEN_PATH:
            body = await _read_body(receive)
            resp = self._token(method, authorization, body, path)
        else:
            resp, list_query = self._api(method, path, scope, authorization)

        post = None
        if resp.status == 200:
            with sim.lock:
                kinds = POST_KINDS if resp.rows else ("drop", "malformed_json")
                post = sim.faults.take(kinds, path, client_key)
            if post is not None and post.kind == "malformed_record" and resp.resource:
                resp.body = _corrupt(resp.body, resp.resource)
        sim.record_request(route, resp.status, resp.rows if resp.status == 200 else 0)
        if post is not None and post.kind == "malformed_json":
            resp.body = resp.body[: max(1, len(resp.body) // 2)]
        if post is not None and post.kind == "drop":
            await _send_partial(send, resp, post.params["fraction"])
            raise DropConnection(path)
        await _send(send, resp)
        # Faults' changes are instruments of a test, not data: a state file does not keep them.
        with sim.unrecorded():
            if list_query is not None and resp.status == 200:
                resource, q, slots = list_query
                # Drift churns only non-empty numbered pages after the first: a keyset reader
                # (page 1, or no page) is not disturbed, otherwise each page it reads would add
                # one more to read.
                numbered = q.page_given and q.page > 1 and slots
                if numbered and sim.faults.take(("drift",), path, client_key) is not None:
                    drift(sim, resource, q)
                if slots and sim.faults.take(CHURN_KINDS, path, client_key) is not None:
                    churn(sim, resource, q, slots)
            action = sim.faults.take(ACTION_KINDS, path, client_key)
            if action is not None and action.remaining == 0:
                sim.run_action(action.kind, action.params)

    def _token(self, method: str, authorization: str | None, body: bytes, path: str) -> Response:
        sim = self.sim
        if method != "POST":
            return Response(405, _msg(405, "Method Not Allowed"), [(b"allow", b"POST")])
        with sim.lock:
            disabled = sim.faults.take(("api_access_disabled",), path) is not None
            result = sim.auth.token_request(authorization, body, scope_granted=not disabled)
        return Response(result.status, _dumps(result.body), list(result.headers))

    def _api(
        self, method: str, path: str, scope: Scope, authorization: str | None
    ) -> tuple[Response, tuple[str, Query, list[int]] | None]:
        sim = self.sim
        with sim.lock:
            if not sim.auth.check_bearer(authorization):
                return _unauthorized(), None
            if sim.faults.take(("wrong_region",), path) is not None:
                # Valid token, but for an account that lives in the other region's API.
                return _unauthorized(), None
            if method != "GET":
                return Response(405, _msg(405, "Method Not Allowed"), [(b"allow", b"GET")]), None
            spec = LIST_ROUTES.get(path)
            if spec is not None:
                return self._list(spec, scope)
            nested = _nested(path)
            if nested is not None:
                parent, parent_id, child = nested
                if self.sim.tables[parent.key].slot_of(parent_id) is None:
                    return not_found(parent.label, str(parent_id)), None
                # The parent's id is an implicit filter on the child's link field.
                return self._list(child, scope, (("task_id", str(parent_id)),))
            for prefix, item_spec in ITEM_PREFIXES:
                if path.startswith(prefix):
                    rid = path[len(prefix) :]
                    if rid and "/" not in rid:
                        return self._item(item_spec, rid, scope), None
            return route_not_found(method, path), None

    def _list(
        self, spec: res.ResourceSpec, scope: Scope, implicit: tuple[tuple[str, str], ...] = ()
    ) -> tuple[Response, tuple[str, Query, list[int]] | None]:
        sim = self.sim
        params = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
        params += list(implicit)
        try:
            q = parse_query(
                spec,
                params,
                default_page_size=sim.default_page_size,
                max_page_size=sim.max_page_size,
            )
            table = sim.tables[spec.key]
            slots = execute(table, q)
        except QueryError as exc:
            return Response(400, _dumps({"message": str(exc)})), None
        rows = _render_rows(table, slots, q.fields)
        # bytes.join, not %-formatting: it copies a multi-megabyte page several times faster.
        if spec.envelope == "count_rows":
            head = b'{"status":200,"data":{"count":%d,"rows":[' % len(slots)
            body = b"".join((head, rows, b"]}}"))
        else:
            body = b"".join((b'{"status":200,"data":[', rows, b"]}"))
        return Response(200, body, rows=len(slots), resource=spec), (spec.key, q, slots)

    def _item(self, spec: res.ResourceSpec, rid_text: str, scope: Scope) -> Response:
        table = self.sim.tables[spec.key]
        try:
            rid = int(rid_text)
        except ValueError:
            return not_found(spec.label, rid_text)
        slot = table.slot_of(rid)
        if slot is None:
            return not_found(spec.label, rid_text)
        params = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
        fields = [v for k, v in params if k == "fields"]
        if fields:
            try:
                q = parse_query(spec, [("fields", fields[-1])])
            except QueryError as exc:
                return Response(400, _dumps({"message": str(exc)}))
            row = _render_rows(table, [slot], q.fields)
        else:
            row = table.blobs[slot] or b"null"
        return Response(200, b'{"status":200,"data":%b}' % row, rows=1, resource=spec)

    # ----------------------------------------------------------------- control plane
    async def _control(self, scope: Scope, receive: Receive) -> Response:
        method, path = scope["method"], scope["path"][len(CONTROL_PREFIX) :].rstrip("/")
        raw = await _read_body(receive)
        try:
            body = orjson.loads(raw) if raw.strip() else {}
            if not isinstance(body, dict):
                raise ValueError("the request body must be a JSON object")
            result = self._control_action(method, path, body)
        except (ValueError, TypeError, FaultError, KeyError) as exc:
            if isinstance(exc, UnknownResource):
                return Response(404, _dumps({"error": f"unknown resource {exc.args[0]}"}))
            return Response(400, _dumps({"error": str(exc)}))
        if result is None:
            return Response(404, _dumps({"error": f"no control endpoint {method} {path}"}))
        return Response(200, _dumps(result))

    def _control_action(self, method: str, path: str, body: dict[str, Any]) -> Any:
        sim = self.sim
        if path == "faults":
            if method == "POST":
                kind = body.pop("kind", None)
                if not isinstance(kind, str):
                    raise ValueError("kind is required")
                count = body.pop("count", "default")
                if count is not None and count != "default" and not isinstance(count, int):
                    raise ValueError("count must be an integer or null")
                fault_path = body.pop("path", None)
                return sim.add_fault(kind, count, fault_path, **body)
            if method == "DELETE":
                sim.clear_faults()
                return {"cleared": True}
            if method == "GET":
                with sim.lock:
                    return {"faults": sim.faults.describe()}
        if path == "advance" and method == "POST":
            minutes = body.get("minutes")
            if not isinstance(minutes, int) or minutes < 0:
                raise ValueError("minutes must be a non-negative integer")
            changes = sim.advance(minutes)
            return {"now": sim.now_iso(), "changes": changes}
        if path == "credentials" and method == "POST":
            sim.set_credentials(body.get("client_id"), body.get("client_secret"))
            return {"client_id": sim.auth.client_id}
        if path == "revoke-tokens" and method == "POST":
            sim.revoke_tokens()
            return {"revoked": True}
        if path == "stats" and method == "GET":
            return sim.stats()
        if path == "reset" and method == "POST":
            config = None
            if body:
                if "now" in body:
                    body["now"] = parse_datetime(str(body["now"]))
                if "timezones" in body:
                    body["timezones"] = tuple(body["timezones"])
                config = TenantConfig(**{**_config_dict(sim.config), **body})
            sim.reset(config)
            return {"now": sim.now_iso(), "records": {k: len(t) for k, t in sim.tables.items()}}
        if path.startswith("records/"):
            return self._records(method, path.split("/")[1:], body)
        return None

    def _records(self, method: str, parts: list[str], body: dict[str, Any]) -> Any:
        sim = self.sim
        resource = parts[0]
        if len(parts) == 1 and method == "POST":
            return sim.insert(resource, body)
        if len(parts) == 2:
            rid = int(parts[1])
            if method == "GET":
                rec = sim.get(resource, rid)
                if rec is None:
                    raise KeyError(f"{resource} {rid} not found")
                return rec
            if method == "PATCH":
                return sim.update(resource, rid, body)
            if method == "DELETE":
                return {"deleted": sim.delete(resource, rid)}
        return None


class TenantsApp:
    """ASGI callable serving several tenants on one port, one `Simulator` each, told apart as
    Assignar tells accounts apart: by client id. The token endpoint reads it from the Basic
    credentials, the API from the bearer token that tenant issued. The control plane addresses
    a tenant as /_simulator/tenants/<client id>/...; /_simulator/stats adds up every tenant's.
    """

    def __init__(self, tenants: dict[str, Simulator]) -> None:
        self.apps = {client_id: SimulatorApp(sim) for client_id, sim in tenants.items()}
        self.first = next(iter(self.apps.values()))

    def stats(self) -> dict[str, Any]:
        requests: dict[str, dict[str, int]] = {}
        rows = 0
        for app in self.apps.values():
            stats = app.sim.stats()
            rows += stats["rows_served"]
            for route, codes in stats["requests"].items():
                merged = requests.setdefault(route, {})
                for code, n in codes.items():
                    merged[code] = merged.get(code, 0) + n
        return {"tenants": len(self.apps), "requests": requests, "rows_served": rows}

    def _tenant(self, scope: Scope) -> SimulatorApp:
        authorization = _headers(scope).get("authorization") or ""
        kind, _, credentials = authorization.partition(" ")
        if kind.lower() == "basic":
            try:
                client_id = base64.b64decode(credentials).decode().partition(":")[0]
            except (ValueError, UnicodeDecodeError):
                client_id = ""
            return self.apps.get(client_id, self.first)  # unknown: refused as invalid_client
        for app in self.apps.values():
            if credentials in app.sim.auth.tokens:
                return app
        return self.first  # unknown token: 401 like any tenant would answer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.first(scope, receive, send)
            return
        path: str = scope["path"]
        if path.rstrip("/") == CONTROL_PREFIX + "stats":
            await _send(send, Response(200, _dumps(self.stats())))
            return
        tenants = CONTROL_PREFIX + "tenants/"
        if path.startswith(tenants):
            client_id, _, rest = path[len(tenants) :].partition("/")
            app = self.apps.get(client_id)
            if app is None:
                await _send(send, Response(404, _dumps({"error": f"no tenant {client_id}"})))
                return
            await app({**scope, "path": CONTROL_PREFIX + rest}, receive, send)
            return
        await self._tenant(scope)(scope, receive, send)


# --------------------------------------------------------------------------- helpers
def _config_dict(config: TenantConfig) -> dict[str, Any]:
    return {f: getattr(config, f) for f in config.__dataclass_fields__}


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


def _nested(path: str) -> tuple[res.ResourceSpec, int, res.ResourceSpec] | None:
    """(parent spec, parent id, child spec) when `path` is a sub-resource list, else None."""
    for prefix, suffix, parent, child in NESTED_ROUTES:
        if path.startswith(prefix) and path.endswith(suffix):
            middle = path[len(prefix) : len(path) - len(suffix)]
            if middle.isdigit():
                return parent, int(middle), child
    return None


def _route_name(method: str, path: str) -> str:
    """Request statistics key: the route template, never a raw id."""
    if path in LIST_ROUTES or path == TOKEN_PATH:
        return f"{method} {path}"
    nested = _nested(path)
    if nested is not None:
        return f"{method} {API_PREFIX}{nested[2].list_path}"
    for prefix, _spec in ITEM_PREFIXES:
        if path.startswith(prefix) and "/" not in path[len(prefix) :] and path[len(prefix) :]:
            return f"{method} {prefix}{{id}}"
    return f"{method} (unmatched)"


def _unauthorized() -> Response:
    return Response(401, UNAUTHORIZED, [(b"www-authenticate", b'Bearer error="invalid_token"')])


def _pre_fault_response(fault: Fault) -> Response:
    kind, params = fault.kind, fault.params
    if kind in ("rate_limit", "request_rate"):
        retry = str(params.get("retry_after", 1)).encode()
        return Response(429, _msg(429, "Too Many Requests"), [(b"retry-after", retry)])
    if kind == "maintenance":
        body = {
            "status": 503,
            "errorType": "Maintenance",
            "message": "[503] Assignar is undergoing scheduled maintenance",
        }
        return Response(503, _dumps(body), [(b"retry-after", str(params["retry_after"]).encode())])
    status = params["status"]  # server_error
    headers = []
    if "retry_after" in params:
        headers.append((b"retry-after", str(int(params["retry_after"])).encode()))
    return Response(status, _msg(status, SERVER_ERROR_MESSAGES[status]), headers)


def _render_rows(table: Table, slots: list[int], fields: list[str] | None) -> bytes:
    if fields is None:
        return b",".join([table.blobs[s] for s in slots])  # type: ignore[misc]
    return table.project(slots, fields)


# A record with wrong types: a non-numeric id, an unparseable date-time and a number where the
# schema has a string. Which field gets the number depends on the resource.
_WRONG_NUMBER = {
    "timesheets-expanded": ("total_time", 480),
    "users": ("employee_id", 10042),
    "projects": ("external_id", 2024),
    "orders": ("job_number", 30001),
    "clients": ("external_id", 7),
}


def _corrupt(body: bytes, spec: res.ResourceSpec) -> bytes:
    """Damage one record of the page (the middle one) deterministically."""
    doc = orjson.loads(body)
    data = doc["data"]
    if spec.envelope == "count_rows" and "rows" in data:
        rows = data["rows"]
    else:
        rows = data if isinstance(data, list) else [data]
    if not rows:
        return body
    row = rows[len(rows) // 2]
    if "id" in row:
        row["id"] = f"id-{row['id']}"
    if spec.modified_field and spec.modified_field in row:
        row[spec.modified_field] = "not-a-date"
    name, number = _WRONG_NUMBER.get(spec.key, ("", 12345))
    if name not in spec.fields:
        name = next((f for f, k in spec.fields.items() if k == "str" and f in row), "")
    if name in row:
        row[name] = number
    return orjson.dumps(doc)


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _start(resp: Response, length: int) -> dict[str, Any]:
    return {
        "type": "http.response.start",
        "status": resp.status,
        "headers": [
            (b"content-type", JSON),
            (b"content-length", str(length).encode()),
            *resp.headers,
        ],
    }


async def _send(send: Send, resp: Response) -> None:
    await send(_start(resp, len(resp.body)))
    await send({"type": "http.response.body", "body": resp.body})


async def _send_partial(send: Send, resp: Response, fraction: float) -> None:
    """Announce the full length, send only part of the body (the caller then aborts)."""
    await send(_start(resp, len(resp.body)))
    cut = max(1, int(len(resp.body) * fraction)) if len(resp.body) > 1 else 0
    await send({"type": "http.response.body", "body": resp.body[:cut], "more_body": True})

"""Assignar Public API v2 client: OAuth2 client credentials, keyset paging, filters, retries.

Built on httpx and free of Dagster so that it can be tested and reused on its own. Every failure a
user can meet ends in one typed error from `assignar_pipeline.errors` whose message says what to
fix; the client secret never appears in a URL, a log line, a repr or an exception.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Literal, Protocol

import httpx

from assignar_pipeline.errors import (
    ApiAccessDisabledError,
    AssignarError,
    BadCredentialsError,
    InvalidRequestError,
    MaintenanceError,
    MalformedResponseError,
    NotFoundError,
    RateLimitedError,
    UnavailableError,
    WrongRegionError,
)
from assignar_pipeline.regions import (
    SCOPE,
    TOKEN_URL,
    Endpoints,
    Region,
    Secret,
    endpoints_for,
)

log = logging.getLogger(__name__)

# Resource paths exactly as the API documents them (projects and clients end in a slash).
PROJECTS = "projects/"
USERS = "users"
TIMESHEETS = "timesheets-expanded"
ORDERS = "orders"
CLIENTS = "clients/"

#: Advanced filter operators the API documents (`field__op=value`).
FILTER_OPERATORS = frozenset(
    {"gt", "gte", "lt", "lte", "ne", "is", "not", "in", "not_in", "substring", "starts_with"}
    | {"ends_with", "between", "not_between", "col", "ne_col", "gt_col", "lt_col", "gte_col"}
    | {"lte_col"}
)
_LIST_OPERATORS = frozenset({"in", "not_in"})
_RANGE_OPERATORS = frozenset({"between", "not_between"})


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, bounded by attempts and by total time per request."""

    max_attempts: int = 8
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_total: float = 300.0

    def delay(self, attempt: int) -> float:
        """Wait before retry `attempt` (1-based): half fixed, half random ("equal jitter")."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


class RateLimiter(Protocol):
    """Blocks until one more request may be sent. The pipeline passes one shared across runs."""

    def acquire(self) -> None: ...


class TokenBucket:
    """In-process request-rate limit: `rate` requests per second with bursts up to `burst`."""

    def __init__(self, rate: float, burst: int | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive (requests per second)")
        self.rate = rate
        self.capacity = float(burst or max(1, int(rate)))
        self._tokens = self.capacity
        self._updated = time.monotonic()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            self._tokens -= 1
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait:
            time.sleep(wait)


def encode_filters(filters: Mapping[str, Any]) -> dict[str, str]:
    """Turn `{"modified_time__gte": datetime, "status__in": [...]}` into query parameters.

    Unknown operators are refused here, before a request is wasted on them.
    """
    params: dict[str, str] = {}
    for key, value in filters.items():
        name, _, operator = key.partition("__")
        if not name or (operator and operator not in FILTER_OPERATORS):
            valid = ", ".join(sorted(FILTER_OPERATORS))
            raise InvalidRequestError(
                f"Filter {key!r} is not valid: write 'field' or 'field__operator' "
                f"with an operator among: {valid}."
            )
        if operator in _LIST_OPERATORS | _RANGE_OPERATORS:
            if isinstance(value, str | bytes) or not isinstance(value, Sequence | set | frozenset):
                raise InvalidRequestError(f"Filter {key!r} takes a list of values, got {value!r}.")
            items = list(value)
            if operator in _RANGE_OPERATORS and len(items) != 2:
                raise InvalidRequestError(
                    f"Filter {key!r} takes exactly two values (low, high), got {len(items)}."
                )
            params[key] = ",".join(_encode_value(v) for v in items)
        else:
            params[key] = _encode_value(value)
    return params


def _encode_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidRequestError(f"Datetime filter value {value} needs a time zone.")
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, date | Decimal | int | float | str):
        return value.isoformat() if isinstance(value, date) else str(value)
    raise InvalidRequestError(f"Cannot send {type(value).__name__} {value!r} as a filter value.")


@dataclass
class _Token:
    value: str
    expires_at: float  # time.monotonic()


@dataclass
class RequestStats:
    """What this client has sent: requests, retries, token fetches (for metadata and benchmarks)."""

    requests: int = 0
    retries: int = 0
    token_fetches: int = 0
    by_status: dict[int, int] = field(default_factory=dict)


class AssignarClient:
    """One Assignar account, reached with client credentials. Thread-safe; close it when done."""

    #: Fetch a new token this long before the old one expires, so a request never carries a
    #: token that dies in flight.
    TOKEN_EXPIRY_MARGIN = 60.0
    #: Attempts at a login server that refuses the connection or whose host does not resolve:
    #: a blip passes within a second or two of backoff, while a wrong URL, region or network
    #: would only be hidden behind a minute of retries.
    LOGIN_CONNECT_ATTEMPTS = 3

    def __init__(
        self,
        client_id: str,
        client_secret: Secret | str,
        region: Region | str = Region.NA,
        *,
        endpoints: Endpoints | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        rate_limiter: RateLimiter | None = None,
        max_requests_per_second: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not client_id:
            raise BadCredentialsError("No Assignar client id given: copy it from Settings → API.")
        secret = client_secret if isinstance(client_secret, Secret) else Secret(client_secret)
        if not secret.reveal():
            raise BadCredentialsError(
                "No Assignar client secret given: copy it from Settings → API into the "
                "environment variable the connection names."
            )
        self.region = Region(region)
        self.endpoints = endpoints or endpoints_for(self.region)
        self.client_id = client_id
        self._basic = Secret(
            "Basic " + base64.b64encode(f"{client_id}:{secret.reveal()}".encode()).decode()
        )
        self.retry = retry or RetryPolicy()
        if rate_limiter is None and max_requests_per_second:
            rate_limiter = TokenBucket(max_requests_per_second)
        self._rate_limiter = rate_limiter
        self._sleep = sleep
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            headers={"Accept": "application/json", "User-Agent": "assignar-pay-pipeline"},
        )
        self._token: _Token | None = None
        self._token_lock = threading.Lock()
        self.stats = RequestStats()

    def __repr__(self) -> str:
        return (
            f"AssignarClient(client_id={self.client_id!r}, region={self.region.value!r}, "
            f"api_url={self.endpoints.api_url!r})"
        )

    def __enter__(self) -> AssignarClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- reading ---------------------------------------------------------------------------

    def iter_pages(
        self,
        resource: str,
        *,
        filters: Mapping[str, Any] | None = None,
        fields: Sequence[str] | None = None,
        page_size: int = 500,
        paging: Literal["keyset", "numbered"] = "keyset",
        sort: str = "id",
    ) -> Iterator[list[dict[str, Any]]]:
        """Yield the records of a list endpoint page by page.

        Keyset paging (`sort=id`, `id__gt=<last id>`) is the default because it neither skips nor
        repeats a record when the list changes while it is read; numbered pages shift by one for
        every record inserted or deleted before the current page. The end is a short page.
        """
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        params = encode_filters(filters or {})
        if fields:
            wanted = list(dict.fromkeys(fields))
            if paging == "keyset" and "id" not in wanted:
                wanted.insert(0, "id")  # keyset paging needs each page's last id
            params["fields"] = ",".join(wanted)
        params["page_size"] = str(page_size)
        if paging == "keyset":
            params["sort"] = "id"
            params["page"] = "1"
            floor = filters.get("id__gt") if filters else None
            while True:
                if floor is not None:
                    params["id__gt"] = str(floor)
                rows = self._list(resource, params)
                if rows:
                    yield rows
                if len(rows) < page_size:
                    return
                floor = rows[-1].get("id")
                if not isinstance(floor, int):
                    raise MalformedResponseError(
                        f"Assignar returned a {resource!r} record without an integer id "
                        f"({floor!r}), so paging cannot continue safely."
                    )
        else:
            params["sort"] = sort
            page = 1
            while True:
                params["page"] = str(page)
                rows = self._list(resource, params)
                if rows:
                    yield rows
                if len(rows) < page_size:
                    return
                page += 1

    def iter_records(self, resource: str, **options: Any) -> Iterator[dict[str, Any]]:
        """Yield records one by one (see `iter_pages` for the options)."""
        for page in self.iter_pages(resource, **options):
            yield from page

    def get(self, resource: str, record_id: int) -> dict[str, Any]:
        """One record by id."""
        data = self._get_json(f"{resource.rstrip('/')}/{int(record_id)}", {})
        if not isinstance(data, dict):
            raise MalformedResponseError(
                f"Assignar answered {resource}/{record_id} without a record in 'data'."
            )
        return data

    def check_connection(self) -> list[str]:
        """The "Test connection" checks: credentials, API access, and that data can be read.

        Returns the resources that answered; raises the typed error of the first check that fails.
        """
        self._access_token(force_refresh=True)
        checked = []
        for resource in (PROJECTS, USERS, TIMESHEETS, ORDERS):
            self._list(resource, {"page": "1", "page_size": "1", "sort": "id"})
            checked.append(resource.rstrip("/"))
        return checked

    def _list(self, resource: str, params: Mapping[str, str]) -> list[dict[str, Any]]:
        data = self._get_json(resource, params)
        # Most lists are `data: [...]`; /timesheets-expanded is `data: {"count": n, "rows": [...]}`.
        rows = data.get("rows") if isinstance(data, dict) else data
        if not isinstance(rows, list):
            raise MalformedResponseError(
                f"Assignar answered {resource} without a list of records in 'data'; "
                "the API may have changed. Nothing was imported from this response."
            )
        return rows

    # -- HTTP ------------------------------------------------------------------------------

    def _get_json(self, path: str, params: Mapping[str, str]) -> Any:
        """GET `path` with retries; return the envelope's `data`."""
        url = f"{self.endpoints.api_url}/{path}"
        refreshed = False
        attempt = 0
        deadline = time.monotonic() + self.retry.max_total
        while True:
            token = self._access_token()
            problem, retry_after = None, None
            try:
                response = self._send("GET", url, params=params, auth=f"Bearer {token}")
            except httpx.TimeoutException:
                problem = f"no answer within {self._http.timeout.read:g} s"
            except httpx.TransportError as exc:
                problem = f"connection failed ({type(exc).__name__})"
            else:
                status = response.status_code
                if status == 200:
                    try:
                        body = json.loads(response.content, parse_float=Decimal)
                    except ValueError:
                        problem = "the response was not valid JSON"
                    else:
                        if isinstance(body, dict) and "data" in body:
                            return body["data"]
                        raise MalformedResponseError(
                            f"Assignar answered GET /{path} without the documented "
                            "{status, data} envelope; the API may have changed."
                        )
                elif status == 401:
                    if refreshed:
                        raise WrongRegionError(
                            f"Assignar's login accepted the credentials but the "
                            f"{self.region.label} API ({self.endpoints.api_url}) rejected the "
                            f"new token. The account is probably in the other region: "
                            f"connect with region '{_other(self.region)}' instead."
                        )
                    refreshed = True  # an expired or revoked token: fetch a new one, once
                    self._drop_token(token)
                    continue
                elif status == 403:
                    raise ApiAccessDisabledError(
                        f"Assignar refused access to /{path} (403): the API user lacks "
                        "permission for it. An Assignar admin can grant it under Settings → API."
                    )
                elif status == 404:
                    raise NotFoundError(f"Assignar has no /{path} (404).")
                elif 300 <= status < 400:
                    raise InvalidRequestError(
                        f"Assignar redirected GET /{path} ({status}) to "
                        f"{response.headers.get('Location', '?')}: check ASSIGNAR_API_URL."
                    )
                elif 400 <= status < 500 and status != 429:
                    raise InvalidRequestError(
                        f"Assignar refused GET /{path} ({status}): {_message(response)}. "
                        "Check the filters, fields and page size."
                    )
                else:
                    problem = f"HTTP {status}"
                    if _is_maintenance(response):
                        problem = "maintenance"
                    retry_after = _retry_after(response)
            attempt += 1
            self._wait_or_raise(problem, attempt, deadline, retry_after, f"GET /{path}")

    def _wait_or_raise(
        self, problem: str, attempt: int, deadline: float, retry_after: float | None, what: str
    ) -> None:
        """Sleep before the next attempt, or raise the error that the last problem means."""
        delay = max(retry_after or 0.0, self.retry.delay(attempt))
        if attempt < self.retry.max_attempts and time.monotonic() + delay <= deadline:
            self.stats.retries += 1
            log.warning("Assignar %s: %s; retry %d in %.1f s", what, problem, attempt, delay)
            self._sleep(delay)
            return
        tried = f"{attempt} attempts"
        if problem == "maintenance":
            raise MaintenanceError(
                f"Assignar is under maintenance ({what} still unavailable after {tried}). "
                "Nothing was lost: the next scheduled sync picks up where this one stopped."
            )
        if problem == "HTTP 429":
            raise RateLimitedError(
                f"Assignar kept rate-limiting {what} (HTTP 429) for {tried}. Lower the "
                "request rate for this account or sync fewer connections at once."
            )
        if problem == "the response was not valid JSON":
            raise MalformedResponseError(
                f"Assignar answered {what} with invalid JSON {tried} in a row; "
                "nothing from it was imported. Retry later; report it to Assignar if it persists."
            )
        raise UnavailableError(
            f"Assignar did not answer {what} properly after {tried} ({problem}). "
            "Check the network and Assignar's status page, then retry."
        )

    def _send(self, method: str, url: str, *, auth: str, **kwargs: Any) -> httpx.Response:
        if self._rate_limiter is not None:
            self._rate_limiter.acquire()
        self.stats.requests += 1
        response = self._http.request(method, url, headers={"Authorization": auth}, **kwargs)
        self.stats.by_status[response.status_code] = (
            self.stats.by_status.get(response.status_code, 0) + 1
        )
        return response

    # -- token -----------------------------------------------------------------------------

    def _access_token(self, force_refresh: bool = False) -> str:
        with self._token_lock:
            now = time.monotonic()
            if not force_refresh and self._token and self._token.expires_at > now:
                return self._token.value
            self._token = self._fetch_token()
            return self._token.value

    def _drop_token(self, value: str) -> None:
        """Forget `value` unless another thread has already replaced it."""
        with self._token_lock:
            if self._token and self._token.value == value:
                self._token = None

    def _fetch_token(self) -> _Token:
        url = self.endpoints.token_url
        attempt = unreachable = 0
        deadline = time.monotonic() + self.retry.max_total
        while True:
            problem, retry_after = None, None
            try:
                response = self._send(
                    "POST",
                    url,
                    auth=self._basic.reveal(),
                    data={"grant_type": "client_credentials", "scope": SCOPE},
                )
            except httpx.TimeoutException:
                problem = "no answer from the login server"
            except httpx.ConnectError as exc:
                reason = _connect_failure(exc)
                unreachable += 1
                if unreachable >= self.LOGIN_CONNECT_ATTEMPTS:
                    raise UnavailableError(self._unreachable(url, reason, unreachable)) from None
                problem = f"could not reach the login server ({reason})"
            except httpx.TransportError as exc:
                problem = f"could not reach the login server ({type(exc).__name__})"
            else:
                status = response.status_code
                error = _oauth_error(response)
                if status == 200:
                    return self._parse_token(response)
                if error in ("invalid_client", "unauthorized_client") or status == 401:
                    raise BadCredentialsError(
                        f"Assignar rejected the client id {self.client_id!r} or its secret "
                        f"({error or status}). Check both against Settings → API in Assignar; "
                        "they may have been rotated, in which case store the new secret."
                    )
                if error == "invalid_scope" or status == 403:
                    raise ApiAccessDisabledError(
                        "Assignar did not grant API access to these credentials "
                        f"({error or status}). Ask an Assignar admin to enable API access "
                        "(Settings → API) or contact Assignar support."
                    )
                if 400 <= status < 500 and status != 429:
                    raise InvalidRequestError(
                        f"Assignar's login server refused the token request ({status}, "
                        f"{error or _message(response)}). Check ASSIGNAR_TOKEN_URL."
                    )
                problem = "maintenance" if _is_maintenance(response) else f"HTTP {status}"
                retry_after = _retry_after(response)
            attempt += 1
            self._wait_or_raise(problem, attempt, deadline, retry_after, "token request")

    def _unreachable(self, url: str, reason: str, attempts: int) -> str:
        region = f"{self.region.value!r} ({self.region.label})"
        if url == TOKEN_URL:
            check = (
                f"That is Assignar's own login URL, the same for every region (this one's is "
                f"{region}): check this machine's network (DNS, proxy, firewall), then retry."
            )
        else:
            check = (
                f"Check the URL, set by ASSIGNAR_TOKEN_URL (unset it for Assignar's own, "
                f"{TOKEN_URL}), and that the server it names is running; then the region "
                f"{region} and this machine's network (DNS, proxy, firewall)."
            )
        return (
            f"Could not reach Assignar's login server at {url} ({reason}; {attempts} attempts). "
            + check
        )

    def _parse_token(self, response: httpx.Response) -> _Token:
        try:
            body = response.json()
            value, ttl = body["access_token"], float(body.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError):
            raise MalformedResponseError(
                "Assignar's login server answered without an access_token; "
                "check ASSIGNAR_TOKEN_URL points at the OAuth2 token endpoint."
            ) from None
        self.stats.token_fetches += 1
        margin = min(self.TOKEN_EXPIRY_MARGIN, ttl / 10)
        return _Token(value=value, expires_at=time.monotonic() + ttl - margin)


def _connect_failure(exc: httpx.ConnectError) -> str:
    """Why a connection could not be made, in words: the OS error underneath httpx's."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, socket.gaierror):
            return f"host name not found: {cause.strerror or cause}"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused: nothing listens there"
        cause = cause.__cause__ or cause.__context__
    return str(exc) or type(exc).__name__


def _other(region: Region) -> str:
    return (Region.AU if region is Region.NA else Region.NA).value


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: rare enough that our own backoff is good enough


def _body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _message(response: httpx.Response) -> str:
    body = _body(response)
    text = body.get("message") or body.get("errorMessage") or response.text[:200]
    return str(text).strip() or response.reason_phrase


def _oauth_error(response: httpx.Response) -> str | None:
    error = _body(response).get("error")
    return error if isinstance(error, str) else None


def _is_maintenance(response: httpx.Response) -> bool:
    if response.status_code != 503:
        return False
    body = _body(response)
    text = f"{body.get('errorType', '')} {body.get('message', '')}".lower()
    return "maintenance" in text


__all__ = [
    "CLIENTS",
    "FILTER_OPERATORS",
    "ORDERS",
    "PROJECTS",
    "TIMESHEETS",
    "USERS",
    "AssignarClient",
    "AssignarError",
    "RateLimiter",
    "RetryPolicy",
    "TokenBucket",
    "encode_filters",
]

"""Connections: which Pay team imports from which Assignar account, and with what options.

`connect` runs Pay's own checks (team, subscription, the user's permission, job costing, the secret
variable) and then Assignar's "Test connection" before it stores anything; each refusal says what to
fix. A connection stores the NAME of the variable that holds the client secret, never the secret:
`secret_for` resolves it where a run needs it. Free of Dagster, like the rest of the core.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from assignar_pipeline.client import AssignarClient, RetryPolicy
from assignar_pipeline.errors import AssignarError
from assignar_pipeline.pay import tables as t
from assignar_pipeline.ratelimit import SharedTokenBucket, account_key
from assignar_pipeline.regions import Endpoints, Region, Secret, endpoints_for

#: The permission a Pay role needs to connect or disconnect integrations (pay-domain.md §1.3).
MANAGE_INTEGRATIONS = "integrations.manage"
#: Team features that connections depend on.
INTEGRATIONS = "integrations"
JOB_COSTING = "job_costing"

#: "Test connection" while a person waits: a few quick retries, not the pipeline's five minutes.
CONNECT_RETRY = RetryPolicy(max_attempts=3, base_delay=0.5, max_delay=4.0, max_total=20.0)

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class ConnectionsError(ValueError):
    """A connection cannot be made, found or used; the message says what to fix."""


class ConnectionRefused(ConnectionsError):
    """`connect` refused: Pay's checks or Assignar's "Test connection" failed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnknownConnectionError(ConnectionsError):
    """A key names no connection (or no active one)."""


class MissingSecretError(ConnectionsError):
    """The environment variable a connection names holds no secret where this process runs."""


@dataclass
class ConnectionRequest:
    """What `connect` needs. `client_secret_ref` is an environment variable's name, not a secret."""

    key: str
    team_id: int
    user_email: str
    region: str
    client_id: str
    client_secret_ref: str
    timezone: str
    import_timesheets: bool = True
    import_orders: bool = False


@dataclass(frozen=True)
class ConnectionRow:
    """One row of the `connection` table."""

    id: int
    key: str
    team_id: int
    region: str
    client_id: str
    client_secret_ref: str
    timezone: str
    import_timesheets: bool
    import_orders: bool
    status: str
    connected_by_user_id: int
    created_at: datetime
    disconnected_at: datetime | None

    @property
    def active(self) -> bool:
        return self.status == "active"


_ROW_COLUMNS = [t.connection.c[f.name] for f in fields(ConnectionRow)]


def _row(mapping: Mapping) -> ConnectionRow:
    return ConnectionRow(**{f.name: mapping[f.name] for f in fields(ConnectionRow)})


# -- connect -------------------------------------------------------------------------------------


def connect(
    engine: Engine,
    request: ConnectionRequest,
    *,
    environ: Mapping[str, str] = os.environ,
    endpoints: Endpoints | None = None,
) -> int:
    """Check, test and store a connection; return its id.

    Connecting a key again for the same team updates its settings and reactivates it (nothing
    else changes, so doing it twice is harmless); the same key for another team is refused.
    Raises `ConnectionRefused` with the reason; nothing is written then.
    """
    region = _check_request(request)
    with engine.connect() as conn:
        user_id = _check_pay_side(conn, request)
    secret = _secret_from_env(request.client_secret_ref, environ, ConnectionRefused)
    _test_connection(request, secret, region, endpoints or endpoints_for(region, environ))
    values = {
        "team_id": request.team_id,
        "region": region.value,
        "client_id": request.client_id,
        "client_secret_ref": request.client_secret_ref,
        "timezone": request.timezone,
        "import_timesheets": request.import_timesheets,
        "import_orders": request.import_orders,
        "status": "active",
        "connected_by_user_id": user_id,
        "disconnected_at": None,
    }
    return _store(engine, request, values)


def _store(engine: Engine, request: ConnectionRequest, values: dict) -> int:
    """Insert the connection, or update the team's existing one with the same key."""
    # The Assignar test ran outside any transaction (SQLite would hold its write lock through the
    # HTTP calls otherwise), so the key's owner is checked again where the row is written; a
    # concurrent insert of the same key loses the unique constraint and takes the update path.
    for attempt in (1, 2):
        try:
            with engine.begin() as conn:
                existing = _by_key(conn, request.key)
                _check_account_once(conn, request, values["region"])
                if existing is None:
                    return conn.execute(
                        t.connection.insert()
                        .values(key=request.key, created_at=datetime.now(UTC), **values)
                        .returning(t.connection.c.id)
                    ).scalar_one()
                _check_key_owner(existing, request)
                changed = {k: v for k, v in values.items() if getattr(existing, k) != v}
                if changed:
                    conn.execute(
                        t.connection.update()
                        .where(t.connection.c.id == existing.id)
                        .values(**changed)
                    )
                return existing.id
        except sa.exc.IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _check_request(request: ConnectionRequest) -> Region:
    """The request's own fields, before anything is read."""
    if not request.key or not request.key.strip() or request.key != request.key.strip():
        raise ConnectionRefused(
            "The connection key is empty or has surrounding spaces: give a short name such as "
            "'acme-au' (run config names connections by it)."
        )
    if len(request.key) > t.connection.c.key.type.length:
        raise ConnectionRefused(
            f"The connection key is longer than {t.connection.c.key.type.length} characters: "
            "choose a shorter one."
        )
    try:
        region = Region(request.region)
    except ValueError:
        choices = ", ".join(f"'{r.value}' ({r.label})" for r in Region)
        raise ConnectionRefused(
            f"Unknown Assignar region {request.region!r}: use one of {choices}."
        ) from None
    if not request.client_id:
        raise ConnectionRefused(
            "No Assignar client id given: copy it from Assignar → Settings → API."
        )
    try:
        ZoneInfo(request.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConnectionRefused(
            f"Unknown time zone {request.timezone!r}: give an IANA name such as "
            "'Australia/Sydney' or 'America/Denver' (it decides which work date a shift is on)."
        ) from None
    if not _ENV_NAME.fullmatch(request.client_secret_ref or ""):
        # Never echo the value: someone may have pasted the secret itself here.
        raise ConnectionRefused(
            "The client secret reference must be the NAME of an environment variable (letters, "
            "digits and underscores, e.g. ASSIGNAR_CLIENT_SECRET), not the secret itself: put the "
            "secret in that variable and pass its name."
        )
    return region


def _check_pay_side(conn: Connection, request: ConnectionRequest) -> int:
    """Pay's checks, in the order a person would fix them; return the connecting user's id."""
    team = conn.execute(sa.select(t.team).where(t.team.c.id == request.team_id)).first()
    if team is None:
        raise ConnectionRefused(
            f"Pay team {request.team_id} does not exist: check the team id "
            "(`assignar-pipeline pay init --demo` creates the demo team and prints its id)."
        )
    name = f"{team.name!r} (id {team.id})"
    if team.account_type != "team":
        raise ConnectionRefused(
            f"Pay account {name} is a personal account; Assignar connects to teams only. "
            "Create a team (organisation) in Pay, or convert this account to one, and connect it."
        )
    features = dict(
        conn.execute(
            sa.select(t.team_feature.c.feature, t.team_feature.c.enabled).where(
                t.team_feature.c.team_id == team.id
            )
        ).all()
    )
    if not features.get(INTEGRATIONS):
        raise ConnectionRefused(
            f"Team {name}'s Pay subscription does not include integrations: upgrade the plan or "
            "add the integrations add-on, then connect again."
        )
    email = request.user_email.strip().lower()
    member = conn.execute(
        sa.select(t.pay_user.c.id, t.team_member.c.role_id, t.team_role.c.key.label("role"))
        .join(t.team_member, t.team_member.c.user_id == t.pay_user.c.id)
        .join(t.team_role, t.team_role.c.id == t.team_member.c.role_id)
        .where(
            t.pay_user.c.email == email,
            t.team_member.c.team_id == team.id,
            t.team_member.c.status == "active",
        )
    ).first()
    if member is None:
        raise ConnectionRefused(
            f"Pay user {email!r} is not an active member of team {name}: connect as a team owner "
            "or admin, or ask one to invite this user."
        )
    allowed = conn.execute(
        sa.select(t.role_permission.c.permission).where(
            t.role_permission.c.role_id == member.role_id,
            t.role_permission.c.permission == MANAGE_INTEGRATIONS,
        )
    ).first()
    if allowed is None:
        raise ConnectionRefused(
            f"Pay user {email!r} has the role {member.role!r} on team {name}, which lacks the "
            f"{MANAGE_INTEGRATIONS} permission: connect as someone who has it (an owner), or ask "
            "an owner to grant it to the role."
        )
    if request.import_orders and not features.get(JOB_COSTING):
        raise ConnectionRefused(
            f"Importing orders needs job costing, which team {name}'s Pay subscription lacks: "
            "connect without orders (--no-orders / import_orders: false) or enable job costing."
        )
    existing = _by_key(conn, request.key)
    if existing is not None:
        _check_key_owner(existing, request)
    return member.id


def _check_key_owner(existing: ConnectionRow, request: ConnectionRequest) -> None:
    if existing.team_id != request.team_id:
        raise ConnectionRefused(
            f"The connection key {request.key!r} already belongs to Pay team {existing.team_id}: "
            "choose another key for this team."
        )


def _check_account_once(conn: Connection, request: ConnectionRequest, region: str) -> None:
    """One team imports one Assignar account once: a second key would pay every shift twice."""
    c = t.connection.c
    other = conn.execute(
        sa.select(c.key).where(
            c.team_id == request.team_id,
            c.region == region,
            c.client_id == request.client_id,
            c.status == "active",
            c.key != request.key,
        )
    ).scalar()
    if other is not None:
        raise ConnectionRefused(
            f"Pay team {request.team_id} already imports this Assignar account as {other!r} "
            f"(client id {request.client_id!r}): a second connection would import every shift "
            f"twice. Change {other!r} instead, or disconnect it first."
        )


def _test_connection(
    request: ConnectionRequest, secret: Secret, region: Region, endpoints: Endpoints
) -> None:
    """Assignar's "Test connection"; its typed error's message becomes the refusal reason."""
    try:
        with AssignarClient(
            request.client_id, secret, region, endpoints=endpoints, retry=CONNECT_RETRY
        ) as client:
            client.check_connection()
    except AssignarError as exc:
        raise ConnectionRefused(f"Assignar's test connection failed: {exc}") from None


# -- disconnect and look-ups ---------------------------------------------------------------------


def disconnect(engine: Engine, key: str) -> ConnectionRow:
    """Mark a connection disconnected; every record it imported stays. Idempotent."""
    with engine.begin() as conn:
        existing = _by_key(conn, key)
        if existing is None:
            raise UnknownConnectionError(f"No connection has the key {key!r}. {_known_keys(conn)}")
        if existing.active:
            conn.execute(
                t.connection.update()
                .where(t.connection.c.id == existing.id)
                .values(status="disconnected", disconnected_at=datetime.now(UTC))
            )
        return _by_key(conn, key)  # type: ignore[return-value]


def all_connections(engine: Engine) -> list[ConnectionRow]:
    """Every connection, active or not, by key."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(*_ROW_COLUMNS).order_by(t.connection.c.key)).mappings()
        return [_row(r) for r in rows]


def named_connections(engine: Engine, keys: Sequence[str]) -> list[ConnectionRow]:
    """The connections, active or not, named by `keys`: what to show history or status of.

    A key that names none is refused by name with the known keys, as disconnecting it would be:
    an empty answer would read as "nothing happened" for a typo."""
    with engine.connect() as conn:
        for key in keys:
            if _by_key(conn, key) is None:
                raise UnknownConnectionError(
                    f"No connection has the key {key!r}. {_known_keys(conn)}"
                )
    by_key = {r.key: r for r in all_connections(engine)}
    return [by_key[k] for k in dict.fromkeys(keys)]


def active_connections(engine: Engine, keys: Sequence[str] | None = None) -> list[ConnectionRow]:
    """The active connections named by `keys` (in that order), or every active one when None.

    A key that names no connection, or a disconnected one, is an error naming it: a run asked
    for it, so silently skipping it would leave that team unsynced without anyone noticing.
    """
    rows = all_connections(engine)
    if keys is None:
        return [r for r in rows if r.active]
    by_key = {r.key: r for r in rows}
    wanted = list(dict.fromkeys(keys))
    unknown = [k for k in wanted if k not in by_key]
    inactive = [k for k in wanted if k in by_key and not by_key[k].active]
    problems = []
    if unknown:
        problems.append(f"unknown connection key(s): {', '.join(map(repr, unknown))}")
    if inactive:
        problems.append(
            f"disconnected: {', '.join(map(repr, inactive))} (connect again to reactivate)"
        )
    if problems:
        active = [r.key for r in rows if r.active]
        known = ", ".join(active) if active else "none"
        raise UnknownConnectionError(f"{'; '.join(problems)}. Active connections: {known}.")
    return [by_key[k] for k in wanted]


def secret_for(row: ConnectionRow, environ: Mapping[str, str] = os.environ) -> Secret:
    """The client secret of `row`, read from the environment variable it names."""
    return _secret_from_env(row.client_secret_ref, environ, MissingSecretError, row.key)


def request_rate(environ: Mapping[str, str] = os.environ) -> float | None:
    """Requests per second per Assignar account (ASSIGNAR_MAX_REQUESTS_PER_SECOND), or None."""
    return float(environ.get("ASSIGNAR_MAX_REQUESTS_PER_SECOND") or 0) or None


def open_client(
    row: ConnectionRow,
    engine: Engine | None = None,
    *,
    rate: float | None = None,
    timeout: float = 30.0,
    retry_max_seconds: float = 300.0,
) -> AssignarClient:
    """A client for one connection, its secret read from the variable the connection names.

    With the Pay `engine` and a `rate`, the limit is the account's bucket in the Pay database,
    which holds across concurrent runs and processes; without the engine, a limit for this
    client alone.
    """
    limiter = None
    if rate and engine is not None:
        limiter = SharedTokenBucket(engine, account_key(row.region, row.client_id), rate)
    return AssignarClient(
        row.client_id,
        secret_for(row),
        row.region,
        endpoints=endpoints_for(row.region),
        timeout=timeout,
        retry=RetryPolicy(max_total=retry_max_seconds),
        rate_limiter=limiter,
        max_requests_per_second=None if limiter else rate,
    )


def secret_from_env(name: str, environ: Mapping[str, str] = os.environ) -> Secret:
    """A client secret given by the name of the variable holding it (test connection)."""
    return _secret_from_env(name, environ, MissingSecretError)


def _secret_from_env(
    name: str,
    environ: Mapping[str, str],
    error: type[ConnectionsError],
    key: str | None = None,
) -> Secret:
    value = environ.get(name)
    if not value:
        whose = f" (connection {key!r})" if key else ""
        raise error(
            f"Environment variable {name}{whose} is not set: put the Assignar client secret in "
            "it where the pipeline runs (the connection stores only the variable's name)."
        )
    return Secret(value)


def _by_key(conn: Connection, key: str) -> ConnectionRow | None:
    found = (
        conn.execute(sa.select(*_ROW_COLUMNS).where(t.connection.c.key == key)).mappings().first()
    )
    return None if found is None else _row(found)


def _known_keys(conn: Connection) -> str:
    keys = conn.execute(sa.select(t.connection.c.key).order_by(t.connection.c.key)).scalars().all()
    if not keys:
        return "There are no connections yet: create one with `assignar-pipeline connect`."
    return f"Known keys: {', '.join(keys)}."

"""Sync settings: per connection (when it syncs, what, whom it tells) and for the deployment.

The hourly schedule, the status command and the notification sensors read them here; the
`settings` command and the Dagster job change them through `change_settings`, which refuses, with
what to fix, a value that cannot work (orders without job costing, an unknown weekday, ...).
Free of Dagster, like the rest of the core.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from assignar_pipeline.connections import JOB_COSTING, UnknownConnectionError
from assignar_pipeline.entities import ENTITIES
from assignar_pipeline.pay import tables as t
from assignar_pipeline.schedule import FREQUENCIES, Cadence, parse_time

#: Connections per sync run when nothing else is configured (DESIGN.md: "e.g. 10 per run").
DEFAULT_BATCH_SIZE = 10
MAX_BATCH_SIZE = 200
MAX_LOOKBACK_DAYS = 31
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_EMAIL = re.compile(r"[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class SettingsError(ValueError):
    """A setting cannot be applied; the message says what to fix."""


@dataclass(frozen=True)
class SyncSettings:
    """What the scheduled sync does for one connection."""

    connection_id: int
    key: str
    team_id: int
    status: str
    timezone: str
    import_timesheets: bool
    import_orders: bool
    job_costing: bool
    frequency: str
    time: str  # preferred local time, HH:MM
    weekday: int  # ISO weekday for weekly syncs
    auto_sync_timesheets: bool
    auto_sync_orders: bool
    lookback_days: int
    notify_emails: tuple[str, ...]
    webhook_url: str | None

    @property
    def cadence(self) -> Cadence:
        return Cadence(self.frequency, self.time, self.weekday, self.timezone)

    @property
    def entities(self) -> tuple[str, ...]:
        """The dated entities the scheduled sync keeps current, in the order it syncs them.

        Timesheets: imported and auto-synced. Orders: imported, auto-synced, and the team has
        job costing (a team that lost it stops syncing orders rather than failing).
        """
        return tuple(e.name for e in ENTITIES if e.auto_synced_by(self))

    @property
    def scheduled(self) -> bool:
        """Whether the hourly schedule ever launches a sync for this connection."""
        return self.status == "active" and bool(self.entities)

    def describe(self) -> str:
        """One line for the CLI and run logs (recipients counted, the webhook never shown)."""
        when = {
            "hourly": "hourly",
            "daily": f"daily at {self.time}",
            "weekly": f"weekly on {WEEKDAYS[self.weekday - 1].title()} at {self.time}",
        }[self.frequency]
        what = ", ".join(self.entities) or "nothing (auto-sync off)"
        return (
            f"{self.key}: {when} {self.timezone}; syncs {what}; lookback {self.lookback_days} "
            f"day(s); {len(self.notify_emails)} recipient(s)"
            f"{'; webhook set' if self.webhook_url else ''}"
        )


_COLUMNS = {
    "connection_id": t.connection.c.id,
    "key": t.connection.c.key,
    "team_id": t.connection.c.team_id,
    "status": t.connection.c.status,
    "timezone": t.connection.c.timezone,
    "import_timesheets": t.connection.c.import_timesheets,
    "import_orders": t.connection.c.import_orders,
    "frequency": t.connection.c.sync_frequency,
    "time": t.connection.c.sync_time,
    "weekday": t.connection.c.sync_weekday,
    "auto_sync_timesheets": t.connection.c.auto_sync_timesheets,
    "auto_sync_orders": t.connection.c.auto_sync_orders,
    "lookback_days": t.connection.c.lookback_days,
    "notify_emails": t.connection.c.notify_emails,
    "webhook_url": t.connection.c.webhook_url,
}


def read_settings(
    conn: Connection, *, keys: Sequence[str] | None = None, ids: Sequence[int] | None = None
) -> list[SyncSettings]:
    """Settings of every connection (or those named), by key; one query whatever their number."""
    job_costing = (
        sa.select(t.team_feature.c.enabled)
        .where(t.team_feature.c.team_id == t.connection.c.team_id)
        .where(t.team_feature.c.feature == JOB_COSTING)
        .scalar_subquery()
    )
    query = sa.select(*(c.label(n) for n, c in _COLUMNS.items()), job_costing.label("job_costing"))
    if keys is not None:
        query = query.where(t.connection.c.key.in_(list(keys)))
    if ids is not None:
        query = query.where(t.connection.c.id.in_(list(ids)))
    rows = conn.execute(query.order_by(t.connection.c.key)).mappings().all()
    return [_settings(row) for row in rows]


def _settings(row: Mapping[str, Any]) -> SyncSettings:
    values = {f.name: row[f.name] for f in fields(SyncSettings)}
    values["job_costing"] = bool(row["job_costing"])
    values["notify_emails"] = split_emails(row["notify_emails"])
    return SyncSettings(**values)


def settings_for(conn: Connection, key: str) -> SyncSettings:
    found = read_settings(conn, keys=[key])
    if not found:
        known = conn.execute(sa.select(t.connection.c.key).order_by(t.connection.c.key)).scalars()
        names = ", ".join(known) or "none yet"
        raise UnknownConnectionError(f"No connection has the key {key!r}. Known keys: {names}.")
    return found[0]


def split_emails(value: str | None) -> tuple[str, ...]:
    return tuple(e.strip() for e in re.split(r"[,;\s]+", value or "") if e.strip())


@dataclass
class SettingsChange:
    """The settings to change; None leaves a setting as it is."""

    frequency: str | None = None
    time: str | None = None
    weekday: int | str | None = None
    auto_sync_timesheets: bool | None = None
    auto_sync_orders: bool | None = None
    lookback_days: int | None = None
    notify_emails: Sequence[str] | str | None = None  # empty: nobody
    webhook_url: str | None = None  # empty string: remove

    def is_empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))


def change_settings(engine: Engine, key: str, change: SettingsChange) -> SyncSettings:
    """Validate and apply `change` to one connection; return its settings afterwards."""
    with engine.begin() as conn:
        current = settings_for(conn, key)
        values = _validated(current, change)
        if values:
            conn.execute(
                t.connection.update()
                .where(t.connection.c.id == current.connection_id)
                .values(values)
            )
        return settings_for(conn, key)


def _validated(current: SyncSettings, change: SettingsChange) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if change.frequency is not None:
        frequency = change.frequency.strip().lower()
        if frequency not in FREQUENCIES:
            raise SettingsError(
                f"Unknown sync frequency {change.frequency!r}: use one of {', '.join(FREQUENCIES)}."
            )
        values["sync_frequency"] = frequency
    if change.time is not None:
        try:
            hour, minute = parse_time(change.time)
        except ValueError:
            raise SettingsError(
                f"Preferred sync time {change.time!r} is not a local time HH:MM (00:00-23:59), "
                "e.g. 06:00."
            ) from None
        values["sync_time"] = f"{hour:02d}:{minute:02d}"
    if change.weekday is not None:
        values["sync_weekday"] = parse_weekday(change.weekday)
    if change.lookback_days is not None:
        if not 0 <= change.lookback_days <= MAX_LOOKBACK_DAYS:
            raise SettingsError(
                f"Lookback must be 0 to {MAX_LOOKBACK_DAYS} days (got {change.lookback_days}): "
                "it is the window each sync re-reads to catch records deleted in Assignar."
            )
        values["lookback_days"] = change.lookback_days
    if change.auto_sync_timesheets is not None:
        if change.auto_sync_timesheets and not current.import_timesheets:
            raise SettingsError(
                f"Connection {current.key!r} does not import timesheets, so they cannot be "
                "auto-synced: connect it again with --timesheets first."
            )
        values["auto_sync_timesheets"] = change.auto_sync_timesheets
    if change.auto_sync_orders is not None:
        if change.auto_sync_orders and not current.job_costing:
            raise SettingsError(
                f"Auto-syncing orders needs job costing, which Pay team {current.team_id}'s "
                "subscription lacks: enable job costing, or leave orders off."
            )
        if change.auto_sync_orders and not current.import_orders:
            raise SettingsError(
                f"Connection {current.key!r} does not import orders, so they cannot be "
                "auto-synced: connect it again with --orders first."
            )
        values["auto_sync_orders"] = change.auto_sync_orders
    if change.notify_emails is not None:
        emails = (
            split_emails(change.notify_emails)
            if isinstance(change.notify_emails, str)
            else tuple(e.strip() for e in change.notify_emails if e.strip())
        )
        bad = [e for e in emails if not _EMAIL.fullmatch(e)]
        if bad:
            raise SettingsError(
                f"Not an email address: {', '.join(map(repr, bad))}. Give addresses such as "
                "payroll@example.com, separated by commas."
            )
        values["notify_emails"] = ", ".join(dict.fromkeys(emails)) or None
    if change.webhook_url is not None:
        values["webhook_url"] = _webhook(change.webhook_url.strip()) or None
    return values


def _webhook(url: str) -> str:
    if not url:
        return ""
    if url.startswith("env:"):
        if not _ENV_NAME.fullmatch(url[4:]):
            raise SettingsError(
                "A webhook reference is env:NAME, NAME being the environment variable that holds "
                "the URL (letters, digits, underscores)."
            )
        return url
    if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", url):
        raise SettingsError(
            "The webhook must be an http(s) URL, or env:NAME when the URL carries a token (most "
            "chat webhooks do): then only the variable's name is stored."
        )
    return url


def parse_weekday(value: int | str) -> int:
    """ISO weekday from 1-7 or a name (mon, Monday, ...)."""
    text = str(value).strip().lower()
    if text.isdigit() and 1 <= int(text) <= 7:
        return int(text)
    for number, name in enumerate(WEEKDAYS, start=1):
        if text[:3] == name and len(text) >= 3:
            return number
    raise SettingsError(f"Unknown weekday {value!r}: use mon..sun or 1 (Monday) to 7 (Sunday).")


# -- deployment-wide settings -------------------------------------------------------------------


def batch_size(conn: Connection) -> int:
    """Connections per scheduled sync run."""
    value = conn.execute(
        sa.select(t.sync_setting.c.value).where(t.sync_setting.c.name == "batch_size")
    ).scalar()
    return int(value) if value else DEFAULT_BATCH_SIZE


def set_batch_size(engine: Engine, size: int) -> int:
    if not 1 <= size <= MAX_BATCH_SIZE:
        raise SettingsError(
            f"Batch size must be 1 to {MAX_BATCH_SIZE} connections per sync run (got {size})."
        )
    with engine.begin() as conn:
        done = conn.execute(
            t.sync_setting.update()
            .where(t.sync_setting.c.name == "batch_size")
            .values(value=str(size), updated_at=datetime.now(UTC))
        ).rowcount
        if not done:
            conn.execute(
                t.sync_setting.insert().values(
                    name="batch_size", value=str(size), updated_at=datetime.now(UTC)
                )
            )
    return size

"""Is each connection's Pay data as fresh as its sync frequency promises?

Per connection and synced entity (timesheets, orders), Pay holds everything Assignar changed up
to `as_of`: the last change-detection sync that committed (`sync_cursor.delta_at`), or the
initial import's fetch of its newest date (`sync_state`), whichever is later. Data older than the
sync frequency plus a grace period is stale: the daemon stopped, a secret expired, Assignar was
down, a sync keeps failing. Read per connection from our own tables, because Dagster's freshness
policies look at an asset's materializations, which are not per connection (README, "Alerts").
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from assignar_pipeline.alerts import Finding
from assignar_pipeline.pay import tables as t
from assignar_pipeline.sync_settings import SettingsError, read_settings

#: How old data may be, before the grace period, for each sync frequency.
INTERVALS = {"hourly": timedelta(hours=1), "daily": timedelta(days=1), "weekly": timedelta(days=7)}
#: Room for the tick to launch the sync and the sync to finish (an hourly sync that ran at 10:00
#: leaves data 1 h 59 min old just before the 12:00 sync commits; a grace of 1 h would flap).
DEFAULT_GRACE = timedelta(hours=2)


def grace_from_env(environ: Mapping[str, str] = os.environ) -> timedelta:
    """FRESHNESS_GRACE_HOURS (default 2): hours past the sync frequency before data is stale."""
    text = (environ.get("FRESHNESS_GRACE_HOURS") or "").strip()
    if not text:
        return DEFAULT_GRACE
    try:
        hours = float(text)
    except ValueError:
        hours = -1.0
    if not 0 <= hours <= 24 * 31:
        raise SettingsError(
            f"FRESHNESS_GRACE_HOURS is {text!r}: give the hours (0 to 744, e.g. 2 or 0.5) that "
            "Pay data may be older than its sync frequency before its freshness check fails."
        )
    return timedelta(hours=hours)


@dataclass(frozen=True)
class Freshness:
    """How old one connection's Pay data of one entity is, at `now`."""

    connection_key: str
    entity: str
    frequency: str
    as_of: datetime | None  # None: never synced or imported
    connected_at: datetime
    now: datetime
    grace: timedelta

    @property
    def limit(self) -> timedelta:
        return INTERVALS[self.frequency] + self.grace

    @property
    def age(self) -> timedelta:
        return self.now - (self.as_of or self.connected_at)

    @property
    def stale(self) -> bool:
        return self.age > self.limit

    def describe(self) -> str:
        allowed = f"{self.frequency} sync + {_duration(self.grace)} grace"
        if self.as_of is None:
            return (
                f"{self.entity} never synced since the connection was made "
                f"{_duration(self.age)} ago ({allowed})"
            )
        return (
            f"{self.entity} {_duration(self.age)} old: last synced "
            f"{self.as_of:%Y-%m-%d %H:%M} UTC ({allowed})"
        )


def freshness(conn: Connection, now: datetime, grace: timedelta) -> list[Freshness]:
    """Every scheduled connection's synced entities, with how old their Pay data is."""
    settings = [s for s in read_settings(conn) if s.scheduled]
    ids = [s.connection_id for s in settings]
    if not ids:
        return []
    cursor, state = t.sync_cursor, t.sync_state
    delta = {
        (r.connection_id, r.entity): r.delta_at
        for r in conn.execute(
            sa.select(cursor.c.connection_id, cursor.c.entity, cursor.c.delta_at).where(
                cursor.c.connection_id.in_(ids), cursor.c.delta_at.is_not(None)
            )
        )
    }
    # The newest date's window of a full fetch (an initial import's last day): a bulk import
    # re-reading 2024 makes nothing of today fresher.
    newest = (
        sa.select(
            state.c.connection_id, state.c.entity, sa.func.max(state.c.window_start).label("day")
        )
        .where(state.c.connection_id.in_(ids))
        .group_by(state.c.connection_id, state.c.entity)
        .subquery()
    )
    fetched = {
        (r.connection_id, r.entity): r.fetch_started_at
        for r in conn.execute(
            sa.select(state.c.connection_id, state.c.entity, state.c.fetch_started_at).join(
                newest,
                sa.and_(
                    newest.c.connection_id == state.c.connection_id,
                    newest.c.entity == state.c.entity,
                    newest.c.day == state.c.window_start,
                ),
            )
        )
    }
    created = dict(
        conn.execute(sa.select(t.connection.c.id, t.connection.c.created_at).where(
            t.connection.c.id.in_(ids)
        )).all()
    )  # fmt: skip
    found = []
    for s in settings:
        for entity in s.entities:
            key = (s.connection_id, entity)
            times = [x for x in (delta.get(key), fetched.get(key)) if x is not None]
            as_of = max(times, default=None)
            found.append(
                Freshness(s.key, entity, s.frequency, as_of, created[s.connection_id], now, grace)
            )
    return found


def findings(found: Sequence[Freshness], entity: str) -> list[Finding]:
    """One finding per connection that syncs `entity`: failing when its data is stale."""
    return [
        Finding(f.connection_key, f.stale, 0, (f.describe(),)) for f in found if f.entity == entity
    ]


def _duration(value: timedelta) -> str:
    minutes = int(value.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [f"{days} d"] * bool(days) + [f"{hours} h"] * bool(hours)
    parts += [f"{minutes} min"] * bool(minutes or not parts)
    return " ".join(parts)

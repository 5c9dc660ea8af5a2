"""When a connection is due for a sync: pure functions of its cadence and the hourly tick.

The sync schedule ticks at the top of every UTC hour. A tick at T covers the hour (T - 1 h, T]:
  - hourly: every tick;
  - daily: the tick whose hour contains the connection's preferred local time that day;
  - weekly: the same, on the preferred ISO weekday only.
Each local date has exactly one slot: the preferred wall time, read in the connection's zone with
`fold=0`. A wall time that does not exist (the spring-forward gap) therefore maps to the instant
the clock jumps past it, and one that occurs twice (fall-back) to its first occurrence. Slots of
consecutive dates are 23 to 25 hours apart, so each falls in exactly one tick's hour: daylight
saving neither skips nor doubles a sync. A zone with a half-hour offset is synced at the first
tick after its preferred time (up to 30 minutes late), never early.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

FREQUENCIES = ("hourly", "daily", "weekly")
HOUR = timedelta(hours=1)

T = TypeVar("T")


@dataclass(frozen=True)
class Cadence:
    """How often one connection syncs: frequency, preferred local time and weekday, its zone."""

    frequency: str  # hourly | daily | weekly
    time: str = "06:00"  # local HH:MM (daily and weekly)
    weekday: int = 1  # ISO weekday, 1 = Monday (weekly)
    timezone: str = "UTC"


def parse_time(value: str) -> tuple[int, int]:
    """'6:30' or '06:30' → (6, 30); ValueError otherwise."""
    hours, _, minutes = value.strip().partition(":")
    hour, minute = int(hours), int(minutes)
    if not (0 <= hour <= 23 and 0 <= minute <= 59) or len(minutes) != 2:
        raise ValueError(value)
    return hour, minute


def tick_of(instant: datetime) -> datetime:
    """The tick an instant belongs to: the top of its UTC hour (instants on the hour are ticks)."""
    utc = instant.astimezone(UTC)
    floor = utc.replace(minute=0, second=0, microsecond=0)
    return floor


def slot(cadence: Cadence, day: date) -> datetime | None:
    """The UTC instant of `day`'s preferred local time, or None when that day has no slot."""
    if cadence.frequency == "weekly" and day.isoweekday() != cadence.weekday:
        return None
    hour, minute = parse_time(cadence.time)
    local = datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo(cadence.timezone))
    # fold=0 (the default): a gap time resolves past the gap, a repeated time to its first pass.
    return local.astimezone(UTC)


def is_due(cadence: Cadence, tick: datetime) -> bool:
    """Whether the tick at `tick` (a top of the hour, UTC) launches this connection's sync."""
    if cadence.frequency == "hourly":
        return True
    if cadence.frequency not in FREQUENCIES:
        return False
    tick = tick.astimezone(UTC)
    return any(tick - HOUR < s <= tick for s in _slots_near(cadence, tick))


def _slots_near(cadence: Cadence, tick: datetime) -> Iterable[datetime]:
    local_day = tick.astimezone(ZoneInfo(cadence.timezone)).date()
    for offset in (-1, 0, 1):
        found = slot(cadence, local_day + timedelta(days=offset))
        if found is not None:
            yield found


def next_due(cadence: Cadence, after: datetime) -> datetime | None:
    """The first tick strictly after `after` that launches a sync (None for an unknown cadence)."""
    after = after.astimezone(UTC)
    if cadence.frequency == "hourly":
        return tick_of(after) + HOUR
    if cadence.frequency not in FREQUENCIES:
        return None
    day = after.astimezone(ZoneInfo(cadence.timezone)).date() - timedelta(days=1)
    for offset in range(10):
        found = slot(cadence, day + timedelta(days=offset))
        if found is None:
            continue
        tick = _ceil_tick(found)
        if tick > after:
            return tick
    return None


def _ceil_tick(instant: datetime) -> datetime:
    floor = tick_of(instant)
    return floor if floor == instant else floor + HOUR


def batches(items: Sequence[T], size: int) -> list[list[T]]:
    """`items` in runs of at most `size`: ceil(len / size) of them."""
    if size < 1:
        raise ValueError("batch size must be at least 1")
    return [list(items[i : i + size]) for i in range(0, len(items), size)]

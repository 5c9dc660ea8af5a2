"""Fast time formatting and local-to-UTC conversion for the simulator.

Generating millions of timesheets spends most of its time on datetimes, so instants are plain epoch
seconds (ints) here and strings are assembled from cached pieces instead of strftime.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_HHMM = [f"{h:02d}:{m:02d}" for h in range(24) for m in range(60)]


@lru_cache(maxsize=200_000)
def day_str(day_ordinal: int) -> str:
    """'YYYY-MM-DD' for a proleptic Gregorian ordinal (cached: a few thousand distinct days)."""
    return date.fromordinal(day_ordinal).isoformat()


def hhmm(minutes: int) -> str:
    """'HH:MM' for minutes since midnight (wraps at 24 h)."""
    return _HHMM[minutes % 1440]


def duration_hhmm(minutes: int) -> str:
    """'HH:MM' for a duration; hours may exceed 23."""
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def iso_utc(ts: int, millis: int = 0) -> str:
    """ISO 8601 UTC with milliseconds and 'Z' (the API's style): 2024-01-15T08:00:00.000Z."""
    days, rem = divmod(ts, 86400)
    return f"{day_str(days + EPOCH_ORDINAL)}T{_HHMM[rem // 60]}:{rem % 60:02d}.{millis:03d}Z"


def iso_naive(day_ordinal: int, minutes: int) -> str:
    """Local wall-clock 'YYYY-MM-DDTHH:MM:SS' (the API's *_naive style); minutes may exceed 1440."""
    extra, minutes = divmod(minutes, 1440)
    return f"{day_str(day_ordinal + extra)}T{_HHMM[minutes]}:00"


def epoch(dt: datetime) -> int:
    """Epoch seconds of an aware datetime."""
    return int(dt.timestamp())


def from_epoch(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@lru_cache(maxsize=500_000)
def _offset_seconds(tz_name: str, day_ordinal: int, hour: int) -> int:
    # Cached per (zone, day, hour): DST transitions in the supported zones happen on the hour, so
    # the offset is constant within an hour and the cache turns zoneinfo lookups into dict hits.
    d = date.fromordinal(day_ordinal)
    local = datetime(d.year, d.month, d.day, hour, tzinfo=zone(tz_name))
    off = local.utcoffset()
    assert off is not None
    return int(off.total_seconds())


def local_to_epoch(tz_name: str, day_ordinal: int, minutes: int) -> int:
    """Epoch seconds of local wall time `minutes` after midnight of `day_ordinal` in `tz_name`.

    Minutes past 1440 roll into the next day (overnight shifts). Non-existent local times (inside a
    spring-forward gap) resolve like zoneinfo's fold=0, i.e. with the pre-transition offset.
    """
    extra, minutes = divmod(minutes, 1440)
    day_ordinal += extra
    offset = _offset_seconds(tz_name, day_ordinal, minutes // 60)
    return (day_ordinal - EPOCH_ORDINAL) * 86400 + minutes * 60 - offset


def is_dst_change_day(tz_name: str, day_ordinal: int) -> bool:
    """Whether the zone's UTC offset changes during this local day (a DST transition)."""
    return _offset_seconds(tz_name, day_ordinal, 0) != _offset_seconds(tz_name, day_ordinal, 12)


def dst_transition_days(tz_name: str, first_day: int, last_day: int) -> list[int]:
    """Ordinals of local days in [first_day, last_day] on which the zone's UTC offset changes."""
    return [d for d in range(first_day, last_day + 1) if is_dst_change_day(tz_name, d)]


_DT_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?"
    r"(Z|[+-]\d{2}:?\d{2})?$"
)


def parse_datetime(text: str) -> datetime:
    """Parse a filter value as an instant: a date (midnight UTC) or an ISO date-time.

    Naive values are taken as UTC. A '+' offset that arrived as a space (an unencoded '+' in a query
    string) is accepted too.
    """
    text = text.strip()
    # "2024-01-01T00:00:00 10:00": an unencoded '+' decoded to a space by form decoding.
    text = re.sub(r"(T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}:?\d{2})$", r"\1+\2", text)
    m = _DT_RE.match(text)
    if not m:
        raise ValueError(text)
    y, mo, d, h, mi, s, frac, tz = m.groups()
    micro = int((frac or "0").ljust(6, "0"))
    dt = datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0), micro)
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        dt = dt - sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return dt.replace(tzinfo=UTC)


def canonical_datetime(text: str) -> str:
    """Normalise an ISO date-time or date to the stored form '…T…:SS.mmmZ' (raises ValueError)."""
    dt = parse_datetime(text)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def canonical_date(text: str) -> str:
    """Validate a 'YYYY-MM-DD' date (raises ValueError)."""
    return date.fromisoformat(text.strip()).isoformat()

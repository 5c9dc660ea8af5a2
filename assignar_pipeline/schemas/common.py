"""Shared pieces of the schemas: result types, limits, pre-pass readers, pandera checks."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any, Literal
from zoneinfo import ZoneInfo, available_timezones

import orjson
import pandas as pd
import pandera.pandas as pa

from assignar_pipeline.schemas.columns import CONTROL as _CONTROL
from assignar_pipeline.schemas.columns import CONTROL_MULTILINE as _CONTROL_MULTILINE
from assignar_pipeline.schemas.columns import FIRST_DAY as _FIRST_DAY
from assignar_pipeline.schemas.columns import LAST_DAY as _LAST_DAY
from assignar_pipeline.schemas.columns import frame_rows

Entity = Literal["projects", "workers", "timesheets", "orders"]


@dataclass(frozen=True)
class Quarantined:
    record: Any  # the raw record, JSON-serialisable (Decimal as str)
    assignar_id: str | None  # str(record["id"]) when there is one
    reason: str  # "field: rule"; several joined with "; "


class Validated:
    """A chunk's valid records as staging rows, and its quarantined records.

    `frame` holds the rows as columns (see `columns`: staging columns except connection_id,
    fetched_at and voided_at); `rows` the same rows as dicts of Python values, built on first use.
    """

    def __init__(
        self,
        rows: list[dict[str, Any]] | None = None,
        quarantined: list[Quarantined] | None = None,
        *,
        frame: pd.DataFrame | None = None,
        kinds: Mapping[str, str] | None = None,
    ) -> None:
        self.quarantined = quarantined if quarantined is not None else []
        self.kinds = kinds
        self._rows = rows
        self._frame = frame if frame is not None else pd.DataFrame(rows or [])

    @property
    def frame(self) -> pd.DataFrame:
        return self._frame

    @property
    def rows(self) -> list[dict[str, Any]]:
        if self._rows is None:
            self._rows = frame_rows(self.kinds or {}, self._frame)
        return self._rows

    def __len__(self) -> int:
        return len(self._frame)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Validated):
            return NotImplemented
        return self.rows == other.rows and self.quarantined == other.quarantined

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Validated(rows={len(self)}, quarantined={len(self.quarantined)})"


# --------------------------------------------------------------------------- limits
_BIGINT_MAX = 2**63 - 1
_INT_MAX = 2**31 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)
_US = timedelta(microseconds=1)
_FIRST_DOB = date(1900, 1, 1)
_FIRST_US = (datetime(1990, 1, 1, tzinfo=UTC) - _EPOCH) // _US
_END_US = (datetime(2101, 1, 1, tzinfo=UTC) - _EPOCH) // _US
_DAY_MINUTES = 1440
_QUANTITY_LIMIT = Decimal(10) ** 12
_CENT = Decimal("0.01")
_ID_TEXT_LIMIT = 40  # quarantine.assignar_id

# C0/C1 controls, DEL and lone surrogates (which no database encoding accepts).
_DURATION = re.compile(r"([0-9]{1,4}):([0-5][0-9])")
_CLOCK = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
_MISSING: Any = object()


@cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


_zone_cache: dict[str, ZoneInfo | None] = {}


def _zone(name: Any) -> ZoneInfo | None:
    """The ZoneInfo for a valid IANA name, else None (never loads a file for an unknown name)."""
    if type(name) is not str:
        return None
    try:
        return _zone_cache[name]
    except KeyError:
        zone = ZoneInfo(name) if name in _zone_names() else None
        if len(_zone_cache) < 10_000:
            _zone_cache[name] = zone
        return zone


# --------------------------------------------------------------------------- pre-pass readers
Errors = list[tuple[str, str]]  # (field, message)


def _kind(value: Any) -> str:
    """The JSON name of a value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float | Decimal):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list | tuple):
        return "an array"
    return type(value).__name__


# Each reader returns the typed value or None, and appends (field, message) when the value cannot
# be read. `value` is `_MISSING` when a required key is absent (optional keys read as None). The
# common case is tested first: the pre-pass runs for every field of every record.


def _missing(value: Any, name: str, errs: Errors) -> None:
    if value is _MISSING:
        errs.append((name, "is missing"))


def _int(value: Any, name: str, errs: Errors) -> int | None:
    if type(value) is int and -_BIGINT_MAX <= value <= _BIGINT_MAX:
        return value
    if value is None or value is _MISSING:
        return _missing(value, name, errs)
    if type(value) is int:
        errs.append((name, "is out of range"))
    else:
        errs.append((name, f"must be an integer, not {_kind(value)}"))
    return None


def _str(value: Any, name: str, errs: Errors) -> str | None:
    if type(value) is str:
        return value
    if value is None or value is _MISSING:
        return _missing(value, name, errs)
    errs.append((name, f"must be a string, not {_kind(value)}"))
    return None


def _key(value: Any, name: str, errs: Errors) -> str | None:
    """An optional key string: None when empty or blank, else exactly as given."""
    value = _str(value, name, errs)
    if value is None or not value.strip():
        return None
    return value


def _bool(value: Any, name: str, errs: Errors) -> bool | None:
    if type(value) is bool:
        return value
    if value is None or value is _MISSING:
        return _missing(value, name, errs)
    errs.append((name, f"must be true or false, not {_kind(value)}"))
    return None


def _instant(value: Any, name: str, errs: Errors) -> datetime | None:
    if type(value) is str:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            errs.append((name, "must be an ISO 8601 date-time"))
            return None
        if parsed.tzinfo is None:
            errs.append((name, "must carry a UTC offset or 'Z'"))
            return None
        return parsed
    if value is None or value is _MISSING:
        return _missing(value, name, errs)
    errs.append((name, f"must be an ISO 8601 date-time string, not {_kind(value)}"))
    return None


def _naive(value: Any, name: str, errs: Errors) -> datetime | None:
    if type(value) is str:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            errs.append((name, "must be an ISO 8601 local date-time"))
            return None
        if parsed.tzinfo is not None:
            errs.append((name, "must be a local date-time without an offset"))
            return None
        return parsed
    if value is None or value is _MISSING:
        return _missing(value, name, errs)
    errs.append((name, f"must be an ISO 8601 local date-time string, not {_kind(value)}"))
    return None


def _date(value: Any, name: str, errs: Errors) -> date | None:
    if type(value) is str:
        try:
            return date.fromisoformat(value)
        except ValueError:
            errs.append((name, "must be a YYYY-MM-DD date"))
            return None
    if value is None or value is _MISSING:
        return _missing(value, name, errs)
    errs.append((name, f"must be a YYYY-MM-DD date string, not {_kind(value)}"))
    return None


def _hhmm(value: Any, name: str, errs: Errors, pattern: re.Pattern[str]) -> int | None:
    """Minutes from "HH:MM" (a duration or a wall-clock time, by `pattern`)."""
    if type(value) is str:
        match = pattern.fullmatch(value)
        if match is None:
            errs.append((name, "must be HH:MM"))
            return None
        return int(match[1]) * 60 + int(match[2])
    if value is None or value is _MISSING:
        return _missing(value, name, errs)
    errs.append((name, f"must be an HH:MM string, not {_kind(value)}"))
    return None


def _quantity(value: Any, name: str, errs: Errors) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        errs.append((name, f"must be a number, not {_kind(value)}"))
        return None
    try:
        number = Decimal(repr(value) if isinstance(value, float) else value)
    except InvalidOperation:
        errs.append((name, "must be a number"))
        return None
    if not number.is_finite():
        errs.append((name, "must be a finite number"))
        return None
    return number


def _micros(value: datetime | None) -> int | None:
    return None if value is None else (value - _EPOCH) // _US


def _list(value: Any, name: str, errs: Errors) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    errs.append((name, f"must be an array, not {_kind(value)}"))
    return []


def _object(value: Any, name: str, errs: Errors) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    errs.append((name, f"must be an object, not {_kind(value)}"))
    return {}


def _utc(value: datetime | None) -> datetime | None:
    """The instant in UTC; None beyond year 1..9999 in UTC (the range check reports those)."""
    if value is None:
        return None
    try:
        return value.astimezone(UTC)
    except OverflowError:
        return None


# ------------------------------------------------------------------- pandera building blocks
# Frame models. Frame columns are named after the API fields they come from, so that reasons
# name those fields. Ids and minutes are Int64, dates are ordinals (Int64), instants are
# microseconds since the epoch (Int64), text is object (str), flags are boolean. Columns starting
# with "_" are derived values the cross-field checks compare against; no reason names them.
#
# Checks are shared between models: each factory returns a pandera check for the given columns.
# Nulls never reach a column check (pandera drops them first); nullability is the Field's job.


def _positive(*columns: str) -> Any:
    def check(cls: Any, s: pd.Series) -> pd.Series:
        return s > 0

    return pa.check(*columns, name="positive", error="must be a positive integer")(check)


def _int32(*columns: str) -> Any:
    def check(cls: Any, s: pd.Series) -> pd.Series:
        return s <= _INT_MAX

    return pa.check(*columns, name="int32", error=f"must be at most {_INT_MAX}")(check)


def _max_length(limit: int, *columns: str) -> Any:
    def check(cls: Any, s: pd.Series) -> pd.Series:
        return s.str.len() <= limit

    return pa.check(
        *columns, name=f"max_length_{limit}", error=f"must be at most {limit} characters"
    )(check)


def _no_control(*columns: str, multiline: bool = False) -> Any:
    pattern = _CONTROL_MULTILINE if multiline else _CONTROL

    def check(cls: Any, s: pd.Series) -> pd.Series:
        return ~s.str.contains(pattern, regex=True).astype(bool)

    return pa.check(*columns, name="no_control", error="must not contain control characters")(check)


def _not_blank(*columns: str) -> Any:
    def check(cls: Any, s: pd.Series) -> pd.Series:
        return s.str.strip().str.len() > 0

    return pa.check(*columns, name="not_blank", error="must not be blank")(check)


def _instant_range(*columns: str) -> Any:
    def check(cls: Any, s: pd.Series) -> pd.Series:
        return (s >= _FIRST_US) & (s < _END_US)

    error = f"must be between {_FIRST_DAY} and {_LAST_DAY}"
    return pa.check(*columns, name="instant_range", error=error)(check)


def _date_range(first: date, *columns: str) -> Any:
    low, high = first.toordinal(), _LAST_DAY.toordinal()

    def check(cls: Any, s: pd.Series) -> pd.Series:
        return (s >= low) & (s <= high)

    return pa.check(*columns, name="date_range", error=f"must be between {first} and {_LAST_DAY}")(
        check
    )


def _minutes_range(*columns: str, limit: int = _DAY_MINUTES) -> Any:
    def check(cls: Any, s: pd.Series) -> pd.Series:
        return (s >= 0) & (s <= limit)

    error = f"must be between 0 and {limit} minutes"
    return pa.check(*columns, name="minutes_range", error=error)(check)


def _holds(condition: pd.Series) -> pd.Series:
    """A cross-field condition, passing where an operand is null (that null is reported alone)."""
    return condition.fillna(True).astype(bool)


def _id() -> Any:
    """The record's own id: present and unique within the chunk (positivity is a check)."""
    return pa.Field(nullable=False, unique=True)


# --------------------------------------------------------------------------- per-entity readers
# Each reader turns one record (a dict) into (frame values, row values, child frame values) and
# appends to `errs` what it could not read. Row values are only used when the record is valid.

Read = tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]
Reader = Callable[[dict[str, Any], Errors, ZoneInfo, str], Read]


@dataclass(frozen=True)
class Spec:
    """How one entity is read and checked (see `validation`)."""

    reader: Reader
    model: type[pa.DataFrameModel]
    child_model: type[pa.DataFrameModel] | None = None
    child_field: str = ""
    finish: Callable[[dict[str, Any]], None] | None = None
    #: The staging row's columns and their kinds (see `columns`), in the row dicts' order.
    kinds: Mapping[str, str] = field(default_factory=dict)
    #: The vectorised screen: (ok mask, staging frame) of a chunk of dicts (see `validation`).
    screen: Callable[[list[dict[str, Any]], str], tuple[Any, pd.DataFrame]] | None = None


def content_hash(row: dict[str, Any]) -> str:
    """sha256 hex of the row's values except content_hash, independent of key order.

    The serialisation is orjson's with sorted keys: dates as "2025-08-17", instants as
    "2025-08-17T12:30:00+00:00" (microseconds when present), lines as JSON arrays.
    """
    if "content_hash" in row:
        row = {k: v for k, v in row.items() if k != "content_hash"}
    return hashlib.sha256(orjson.dumps(row, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _quarantine(rec: Any, errs: Errors) -> Quarantined:
    rid = rec.get("id") if isinstance(rec, dict) else None
    reason = "; ".join(f"{field}: {message}" for field, message in errs)
    return Quarantined(
        record=_jsonable(rec),
        assignar_id=None if rid is None else _id_text(rid),
        reason=reason,
    )


def _id_text(value: Any) -> str:
    try:
        text = str(value)
    except Exception:  # a str() that fails is only possible for objects JSON never yields
        text = repr(type(value))
    return text[:_ID_TEXT_LIMIT]


def _jsonable(value: Any) -> Any:
    """A copy that json/orjson can serialise strictly: Decimals and non-finite floats as strings."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)

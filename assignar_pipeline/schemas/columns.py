"""Staging rows as columns: the frame `validate` returns, its content hashes, and the column
readers the vectorised screens use.

A staging frame has one column per staging-table column (except connection_id, fetched_at and
voided_at) in one of these kinds:

- "int": Int64 (nullable); "bool": boolean (nullable); "text": object (str or None);
- "date": datetime64[s] (midnight; NaT for null); "instant": datetime64[us, UTC];
- "json": the value's JSON text, serialised as `content_hash` serialises it (orjson, sorted keys);
- "content_hash": the sha256 hex of the row's other values.

`content_hashes` builds, per row, exactly the bytes `orjson.dumps(row, option=OPT_SORT_KEYS)`
gives for the row as a dict, so a row hashes the same whichever path produced it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from operator import methodcaller
from typing import Any

import numpy as np
import orjson
import pandas as pd
from pandas._libs import lib
from pandas.api.types import infer_dtype

#: Dates of work, orders and instants lie within these days.
FIRST_DAY = date(1990, 1, 1)
LAST_DAY = date(2100, 12, 31)
#: Control characters and lone surrogates; tab and newlines are allowed in descriptions only.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
CONTROL_MULTILINE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")

Kinds = Mapping[str, str]  # column name -> kind, in the order of the row dicts

_DTYPES = {
    "int": "Int64",
    "bool": "boolean",
    "text": object,
    "date": "datetime64[s]",
    "instant": "datetime64[us, UTC]",
    "json": object,
    "content_hash": object,
}


# --------------------------------------------------------------------------- rows <-> frame
def empty_frame(kinds: Kinds) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series([], dtype=_DTYPES[kind]) for name, kind in kinds.items()})


def rows_frame(kinds: Kinds, rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """The frame of row dicts (as the per-record readers build them, or `Validated.rows`)."""
    if not rows:
        return empty_frame(kinds)
    columns: dict[str, Any] = {}
    for name, kind in kinds.items():
        if kind == "content_hash" and name not in rows[0]:
            continue  # hashed once the rows are a frame
        values = [row[name] for row in rows]
        if kind == "json":
            values = [orjson.dumps(v, option=orjson.OPT_SORT_KEYS).decode() for v in values]
        elif kind == "date":
            values = [None if v is None else datetime(v.year, v.month, v.day) for v in values]
        elif kind == "instant":
            values = [None if v is None else v.replace(tzinfo=None) for v in values]
            columns[name] = pd.Series(values, dtype="datetime64[us]").dt.tz_localize(UTC)
            continue
        columns[name] = pd.Series(values, dtype=_DTYPES[kind])
    return pd.DataFrame(columns)


def frame_rows(kinds: Kinds, frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Row dicts (Python values: int, bool, str, date, aware datetime, lists) of a frame."""
    names = list(kinds)
    columns = [_python_values(kind, frame[name]) for name, kind in kinds.items()]
    return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]


def _python_values(kind: str, column: pd.Series) -> list[Any]:
    missing = column.isna().to_numpy()
    if kind == "json":
        return [orjson.loads(v) for v in column]
    if kind == "instant":
        values = column.dt.tz_convert(UTC).dt.to_pydatetime().tolist()
    elif kind == "date":
        values = [None if m else date.fromordinal(int(d)) for d, m in zip(
            column.to_numpy(dtype="datetime64[D]").astype(np.int64) + _UNIX_ORDINAL,
            missing,
            strict=True,
        )]  # fmt: skip
        return values
    else:
        values = column.astype(object).tolist()
    if missing.any():
        values = [None if m else v for v, m in zip(values, missing, strict=True)]
    return values


_UNIX_ORDINAL = date(1970, 1, 1).toordinal()


# --------------------------------------------------------------------------- content hashes
def content_hashes(kinds: Kinds, frame: pd.DataFrame) -> np.ndarray:
    """sha256 hex per row of the row's values except content_hash, as `content_hash` does."""
    names = sorted(name for name, kind in kinds.items() if kind != "content_hash")
    # Python lists (ints, or JSON texts) and one %-template, then C-level maps: no bytecode
    # runs per row.
    slots, columns = zip(*(_json_values(kinds[name], frame[name]) for name in names), strict=True)
    keys = [orjson.dumps(name).decode() for name in names]
    template = "{" + ",".join(f"{key}:{slot}" for key, slot in zip(keys, slots, strict=True)) + "}"
    texts = map(template.__mod__, zip(*columns, strict=True))
    digests = map(_HEXDIGEST, map(hashlib.sha256, map(str.encode, texts)))
    return np.fromiter(digests, dtype=object, count=len(frame))


_HEXDIGEST = methodcaller("hexdigest")


def _json_values(kind: str, column: pd.Series) -> tuple[str, list[Any]]:
    """("%d", Python ints) for an int column without nulls, else ("%s", JSON texts)."""
    if kind == "int" and not column.hasnans:
        return "%d", column.to_numpy(dtype=np.int64).tolist()
    return "%s", _json_texts(kind, column).tolist()


def _json_texts(kind: str, column: pd.Series) -> np.ndarray:
    """The orjson text of every value of a column, as a str (or object) array."""
    missing = column.isna().to_numpy()
    if kind == "int":
        texts = column.to_numpy(dtype=np.int64, na_value=0).astype(str)
    elif kind == "bool":
        texts = np.where(column.to_numpy(dtype=bool, na_value=False), "true", "false")
    elif kind == "date":
        days = column.to_numpy().astype("datetime64[D]").astype(np.int64)
        texts = np.strings.add(_iso_texts(np.where(missing, 0, days) * _DAY_MICROS, 11), '"')
    elif kind == "instant":
        wall = column.dt.tz_convert(None).to_numpy().astype("datetime64[us]").astype(np.int64)
        wall = np.where(missing, 0, wall)
        texts = _iso_texts(wall, 27)  # "YYYY-MM-DDTHH:MM:SS.ffffff
        whole = wall % 1_000_000 == 0
        texts = np.strings.add(np.where(whole, texts.astype("U20"), texts), '+00:00"')
    elif kind == "json":
        texts = column.to_numpy(dtype=object)
    else:  # text
        texts = json_strings(column.to_numpy(dtype=object))
    if missing.any():
        texts = np.where(missing, "null", texts)
    return texts


_DAY_MICROS = 86_400_000_000
#: An opening quote and "YYYY-MM-DDTHH:MM:SS.ffffff" with zero digits, and where the digits go.
_ISO_TEXT = '"0000-00-00T00:00:00.000000'
_ISO_DIGITS = [1, 2, 3, 4, 6, 7, 9, 10, 12, 13, 15, 16, 18, 19, 21, 22, 23, 24, 25, 26]


def _iso_texts(micros: np.ndarray, width: int) -> np.ndarray:
    """'"YYYY-MM-DDTHH:MM:SS.ffffff' of wall-clock microseconds since 1970 (years 1 to 9999),
    its first `width` characters: as `datetime.isoformat` writes it, built digit by digit for
    the whole column (numpy's datetime_as_string costs several times more)."""
    days, micro = np.divmod(micros, _DAY_MICROS)
    year, month, day = _civil_from_days(days)
    second, micro = np.divmod(micro, 1_000_000)
    minute, second = np.divmod(second, 60)
    hour, minute = np.divmod(minute, 60)
    n = len(micros)
    chars = np.tile(np.array([ord(c) for c in _ISO_TEXT], dtype=np.uint32), (n, 1))
    parts = ((year, 4), (month, 2), (day, 2), (hour, 2), (minute, 2), (second, 2), (micro, 6))
    at = iter(_ISO_DIGITS)
    for value, places in parts:
        for power in range(places - 1, -1, -1):
            chars[:, next(at)] += (value // 10**power % 10).astype(np.uint32)
    return chars.view(f"U{len(_ISO_TEXT)}").reshape(n).astype(f"U{width}")


def _civil_from_days(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(year, month, day) of days since 1970-01-01 (H. Hinnant's civil_from_days)."""
    z = days + 719468
    era = z // 146097
    day_of_era = z - era * 146097
    year_of_era = (
        day_of_era - day_of_era // 1460 + day_of_era // 36524 - day_of_era // 146096
    ) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    shifted_month = (5 * day_of_year + 2) // 153
    day = day_of_year - (153 * shifted_month + 2) // 5 + 1
    month = np.where(shifted_month < 10, shifted_month + 3, shifted_month - 9)
    return year_of_era + era * 400 + (month <= 2), month, day


def _json_text(value: str) -> str:
    return orjson.dumps(value).decode()


#: What orjson escapes in a string (or refuses: lone surrogates); anything else it writes as is.
_JSON_ESCAPED = re.compile('["\\\\\x00-\x1f\ud800-\udfff]')


def json_strings(values: np.ndarray) -> np.ndarray:
    """`_json_text` of every value (None for null), per distinct value; when no value has a
    character orjson escapes, the usual case, by quoting alone."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    distinct = list(uniques)
    if _JSON_ESCAPED.search("".join(distinct)) is None:
        texts = list(map('"%s"'.__mod__, distinct))
    else:
        texts = [_json_text(text) for text in distinct]
    return np.array([*texts, None], dtype=object)[codes]  # code -1 (null) picks the None


# --------------------------------------------------------------------------- screens
# The vectorised screens read each field of a chunk into a column plus an `ok` mask: a row is
# clean only if every field is of the expected JSON type and every rule holds. A row that is not
# clean goes through the per-record reader, which says why (or finds it valid after all).


def fields(records: Sequence[dict[str, Any]], names: Sequence[str]) -> dict[str, np.ndarray]:
    """The values of some keys (None where absent) of a list of dicts, as object arrays.

    One pass over the records, all keys of a record at once: a record's dict is then read while
    it is in the CPU cache, which matters more than anything else here."""
    if not records:
        return {name: np.empty(0, dtype=object) for name in names}
    table = lib.dicts_to_array(list(records), list(names))
    return {name: table[:, i] for i, name in enumerate(names)}


def all_of_type(values: Sequence[Any], kind: type) -> bool:
    """Whether every value's type is exactly `kind` (true when there are none), by C-level
    calls only: the usual chunk then skips a per-value comprehension."""
    return len(values) == 0 or set(map(type, values)) == {kind}


def nulls(values: np.ndarray) -> np.ndarray:
    return np.equal(values, None)


def ints(
    values: np.ndarray, *, required: bool, low: int = 1, high: int = 2**63 - 1
) -> tuple[pd.arrays.IntegerArray, np.ndarray]:
    """(Int64 array, ok mask): ok where the value is a JSON integer in low..high (or null when
    not required)."""
    null = nulls(values)
    kind = infer_dtype(values, skipna=True)
    data = None
    if kind == "integer" or kind == "empty":
        try:
            data = np.where(null, 0, values).astype(np.int64)
        except (OverflowError, TypeError, ValueError):
            data = None
    if data is None:
        # Rare: booleans, floats, strings or huge numbers among the ints: look at each value.
        good = np.array([type(v) is int and low <= v <= high for v in values], dtype=bool)
        data = np.where(good, values, 0).astype(np.int64)
        null = ~good
        ok = good.copy()
    else:
        ok = ~null & (data >= low) & (data <= high)
    if not required:
        ok |= nulls(values)
    return pd.arrays.IntegerArray(data, null.copy()), ok


def texts(values: np.ndarray, *, required: bool) -> tuple[np.ndarray, np.ndarray]:
    """(object array with None for null and for non-strings, ok mask)."""
    null = nulls(values)
    kind = infer_dtype(values, skipna=True)
    if kind == "string" or kind == "empty":
        return values, ~null if required else np.ones(len(values), dtype=bool)
    is_str = np.array([type(v) is str for v in values], dtype=bool)
    return np.where(is_str, values, None), is_str if required else is_str | null


def bools(values: np.ndarray, *, required: bool) -> tuple[pd.arrays.BooleanArray, np.ndarray]:
    """(boolean array, ok mask)."""
    null = nulls(values)
    is_bool = np.array([type(v) is bool for v in values], dtype=bool)
    data = np.where(is_bool, values, False).astype(bool)
    return pd.arrays.BooleanArray(data, ~is_bool), is_bool if required else is_bool | null


_DIGITS_AT = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]
_SEPARATORS_AT = {4: "-", 7: "-", 10: "T", 13: ":", 16: ":"}


NAT = np.iinfo(np.int64).min


def instants(values: np.ndarray, *, required: bool, first_us: int, end_us: int) -> tuple[
    np.ndarray, np.ndarray]:  # fmt: skip
    """(microseconds since the epoch, NaT for null; ok mask): ok where the value is an ISO 8601
    string with an offset in the shapes `_iso_micros` reads, within [first_us, end_us). Any
    other shape goes through the reader (`datetime.fromisoformat`)."""
    return _instants(values, required, first_us, end_us, offset=True)


def naive_instants(values: np.ndarray, *, first_us: int, end_us: int) -> tuple[
    np.ndarray, np.ndarray]:  # fmt: skip
    """(wall-clock microseconds, ok mask) of optional local date-times without an offset."""
    return _instants(values, False, first_us, end_us, offset=False)


def _instants(values: np.ndarray, required: bool, first_us: int, end_us: int, *,
              offset: bool) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    column, ok = texts(values, required=required)
    null = nulls(column)
    micros = _iso_micros(column, null, offset=offset)
    ok &= ((micros >= first_us) & (micros < end_us)) | null
    return micros, ok


_ISO_WIDTH = 32  # "YYYY-MM-DDTHH:MM:SS" ".ffffff" "+HH:MM"
_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)
_FRACTION_WEIGHTS = 10 ** np.arange(5, -1, -1, dtype=np.int64)


def _iso_micros(column: np.ndarray, null: np.ndarray, *, offset: bool) -> np.ndarray:
    """Microseconds since the epoch of texts "YYYY-MM-DDTHH:MM:SS", then optionally "." and 1
    to 6 digits, then (when `offset`) "Z" or "+HH:MM"/"-HH:MM", else nothing more; NaT for null
    and any other text. Read with numpy, one step per character position for the whole
    column. Every text it reads, `datetime.fromisoformat` reads as the same instant (the
    screen leaves any other text to the reader)."""
    n = len(column)
    present = np.where(null, "", column)
    lengths = np.fromiter(map(len, present), dtype=np.int64, count=n)
    chars = present.astype(f"U{_ISO_WIDTH}").view(np.uint32).reshape(n, _ISO_WIDTH)
    d = chars.astype(np.int64) - ord("0")
    digit = (d >= 0) & (d <= 9)
    ok = digit[:, _DIGITS_AT].all(axis=1)
    for at, char in _SEPARATORS_AT.items():
        ok &= chars[:, at] == ord(char)
    year = d[:, 0] * 1000 + d[:, 1] * 100 + d[:, 2] * 10 + d[:, 3]
    month = d[:, 5] * 10 + d[:, 6]
    day = d[:, 8] * 10 + d[:, 9]
    hour = d[:, 11] * 10 + d[:, 12]
    minute = d[:, 14] * 10 + d[:, 15]
    second = d[:, 17] * 10 + d[:, 18]
    # Fraction: "." then 1 to 6 digits.
    has_fraction = chars[:, 19] == ord(".")
    run = np.cumprod(digit[:, 20:27], axis=1)  # leading digits after the "."
    places = np.where(has_fraction, run[:, :6].sum(axis=1), 0)
    ok &= ~has_fraction | ((places >= 1) & (run[:, 6] == 0))
    used = np.arange(6) < places[:, None]
    fraction = (np.where(used, d[:, 20:26], 0) * _FRACTION_WEIGHTS).sum(axis=1)
    end = 19 + np.where(has_fraction, places + 1, 0)
    shift = np.zeros(n, dtype=np.int64)  # the offset, in minutes
    if offset:
        rows = np.arange(n)
        at = np.minimum(end, _ISO_WIDTH - 6)  # a row that cannot fit an offset fails below
        sign = chars[rows, at]
        zulu = sign == ord("Z")
        hours = d[rows, at + 1] * 10 + d[rows, at + 2]
        minutes = d[rows, at + 4] * 10 + d[rows, at + 5]
        numeric = (
            ((sign == ord("+")) | (sign == ord("-")))
            & digit[rows, at + 1]
            & digit[rows, at + 2]
            & (chars[rows, at + 3] == ord(":"))
            & digit[rows, at + 4]
            & digit[rows, at + 5]
            & (hours <= 23)
            & (minutes <= 59)
        )
        ok &= (zulu | numeric) & (at == end)
        shift = np.where(numeric, np.where(sign == ord("-"), -1, 1) * (hours * 60 + minutes), 0)
        end = end + np.where(zulu, 1, 6)
    ok &= lengths == end
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_days = _MONTH_DAYS[np.clip(month, 0, 12)] + ((month == 2) & leap)
    ok &= (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= month_days)
    ok &= (hour <= 23) & (minute <= 59) & (second <= 59)
    days = _days_from_civil(year, month, day)
    micros = (((days * 24 + hour) * 60 + minute - shift) * 60 + second) * 1_000_000 + fraction
    return np.where(ok, micros, NAT)


def _days_from_civil(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of proleptic Gregorian dates (H. Hinnant's days_from_civil)."""
    y = year - (month <= 2)
    era = y // 400
    year_of_era = y - era * 400
    day_of_year = (153 * np.where(month > 2, month - 3, month + 9) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


def utc_column(micros: np.ndarray) -> pd.Series:
    """datetime64[us, UTC] of microseconds (NaT as the minimum int64)."""
    return pd.Series(micros.view("datetime64[us]")).dt.tz_localize(UTC)


def per_value(values: np.ndarray, function: Any) -> np.ndarray:
    """`function` of every value, computed once per distinct non-null value (None for null)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    results = np.empty(len(uniques) + 1, dtype=object)
    for i, value in enumerate(uniques):
        results[i] = function(value)
    return results[codes]  # code -1 (null) picks the trailing None


def ordinal_of(text: str) -> int | None:
    """Days since 1970-01-01 of a strict YYYY-MM-DD date within the allowed years, else None."""
    if len(text) != 10 or text[4] != "-" or text[7] != "-":
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return None
    if not FIRST_DAY <= day <= LAST_DAY:
        return None
    return day.toordinal() - _UNIX_ORDINAL


def plain_text(limit: int) -> Any:
    def check(text: str) -> bool:
        return len(text) <= limit and CONTROL.search(text) is None

    return check


def plain_multiline(text: str) -> bool:
    return CONTROL_MULTILINE.search(text) is None


def keys(values: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """(object array, ok) of optional key strings: None when blank, else at most `limit`
    characters without control characters."""
    column, ok = texts(values, required=False)
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    distinct = list(uniques)
    lengths = np.fromiter(map(len, distinct), dtype=np.int64, count=len(distinct))
    # Per distinct text, then per row; the appended entry is for null (code -1).
    blank = (lengths == 0) | np.fromiter(map(str.isspace, distinct), dtype=bool,
                                         count=len(distinct))  # fmt: skip
    good = (lengths <= limit) & _without(CONTROL, distinct)
    blank, good = np.append(blank, True)[codes], np.append(good, True)[codes]
    return np.where(blank, None, column), ok & (good | blank)


def _without(pattern: re.Pattern[str], texts: list[str]) -> np.ndarray:
    """Per text, whether `pattern` (one character class) finds nothing in it: one search over
    all of them joined when none has a match, the usual case."""
    if pattern.search("".join(texts)) is None:
        return np.ones(len(texts), dtype=bool)
    return np.array([pattern.search(text) is None for text in texts], dtype=bool)


def join_lines(line_texts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Per parent row, the JSON array of its children's JSON texts (children in parent order,
    `counts[i]` of them for row i)."""
    lines = np.full(len(counts), "[]", dtype=object)
    if len(line_texts):
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        has = counts > 0
        later = np.ones(len(line_texts), dtype=bool)
        later[starts[has]] = False
        line_texts = np.where(later, "," + line_texts, line_texts)
        lines[has] = "[" + np.add.reduceat(line_texts, starts[has]) + "]"
    return lines


def date_column(days: np.ndarray) -> np.ndarray:
    """datetime64[s] of days since 1970 (NaT as the minimum int64)."""
    return days.view("datetime64[D]").astype("datetime64[s]")

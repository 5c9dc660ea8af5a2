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
    template = "{" + ",".join(orjson.dumps(name).decode() + ":%s" for name in names) + "}"
    columns = [_json_texts(kinds[name], frame[name]) for name in names]
    sha256 = hashlib.sha256
    return np.array(
        [sha256((template % values).encode()).hexdigest() for values in zip(*columns, strict=True)],
        dtype=object,
    )


def _json_texts(kind: str, column: pd.Series) -> np.ndarray:
    """The orjson text of every value of a column, as an object array."""
    missing = column.isna().to_numpy()
    if kind == "int":
        texts = column.to_numpy(dtype=np.int64, na_value=0).astype(str).astype(object)
    elif kind == "bool":
        texts = np.where(column.to_numpy(dtype=bool, na_value=False), "true", "false").astype(
            object
        )
    elif kind == "date":
        texts = '"' + np.datetime_as_string(column.to_numpy(), unit="D").astype(object) + '"'
    elif kind == "instant":
        wall = column.dt.tz_convert(None).to_numpy().astype("datetime64[us]")
        seconds = np.datetime_as_string(wall, unit="s").astype(object)
        micros = np.datetime_as_string(wall, unit="us").astype(object)
        whole = wall.astype(np.int64) % 1_000_000 == 0
        texts = '"' + np.where(whole, seconds, micros) + '+00:00"'
    elif kind == "json":
        texts = column.to_numpy(dtype=object)
    else:  # text
        texts = per_value(column.to_numpy(dtype=object), _json_text)
    if missing.any():
        texts = np.where(missing, "null", texts)
    return texts


def _json_text(value: str) -> str:
    return orjson.dumps(value).decode()


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


def _iso_shape(values: np.ndarray) -> np.ndarray:
    """Where a text starts "YYYY-MM-DDTHH:MM:SS" (ASCII digits, exactly) and has at most 6
    fractional digits, checked in numpy: pandas' strptime also accepts one-digit months and
    days, which `fromisoformat` refuses, and rounds where `fromisoformat` truncates."""
    n = len(values)
    text = np.where(nulls(values), "", values).astype("U27")
    chars = text.view(np.uint32).reshape(n, 27)
    digit = (chars >= ord("0")) & (chars <= ord("9"))
    ok = digit[:, _DIGITS_AT].all(axis=1)
    for at, char in _SEPARATORS_AT.items():
        ok &= chars[:, at] == ord(char)
    ok &= ~((chars[:, 19] == ord(".")) & digit[:, 26])
    return ok


def _parse(values: np.ndarray, formats: Sequence[str], *, utc: bool) -> np.ndarray:
    """Microseconds since the epoch (wall time when not utc) of texts in one of `formats`;
    the minimum int64 (NaT) where none fits."""
    micros = np.full(len(values), NAT, dtype=np.int64)
    todo = ~nulls(values)
    for fmt in formats:
        if not todo.any():
            break
        got = pd.to_datetime(pd.Series(values[todo]), format=fmt, utc=utc, errors="coerce")
        if utc:
            got = got.dt.tz_convert(None)
        micros[todo] = got.to_numpy().astype("datetime64[us]").astype(np.int64)
        todo &= micros == NAT
    return micros


NAT = np.iinfo(np.int64).min

#: Instants as the API writes them; anything else goes through `datetime.fromisoformat`.
_INSTANT_FORMATS = ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z")
_NAIVE_FORMATS = ("%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S")


def instants(values: np.ndarray, *, required: bool, first_us: int, end_us: int) -> tuple[
    np.ndarray, np.ndarray]:  # fmt: skip
    """(microseconds since the epoch, NaT for null; ok mask): ok where the value is an ISO 8601
    string with an offset in one of the API's two shapes, within [first_us, end_us)."""
    return _instants(values, _INSTANT_FORMATS, required, first_us, end_us, utc=True)


def naive_instants(values: np.ndarray, *, first_us: int, end_us: int) -> tuple[
    np.ndarray, np.ndarray]:  # fmt: skip
    """(wall-clock microseconds, ok mask) of optional local date-times without an offset."""
    return _instants(values, _NAIVE_FORMATS, False, first_us, end_us, utc=False)


def _instants(values: np.ndarray, formats: Sequence[str], required: bool, first_us: int,
              end_us: int, *, utc: bool) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    column, ok = texts(values, required=required)
    null = nulls(column)
    ok &= _iso_shape(column) | null
    micros = _parse(np.where(ok, column, None), formats, utc=utc)
    ok &= ((micros >= first_us) & (micros < end_us)) | null
    return micros, ok


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
    column = np.where(per_value(column, str.strip) == "", None, column)
    ok &= (per_value(column, plain_text(limit)) == True) | nulls(column)  # noqa: E712
    return column, ok


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

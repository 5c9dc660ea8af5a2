"""Orders with their activities: frame models and the reader of one record."""

from __future__ import annotations

from decimal import Decimal
from itertools import chain
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

import assignar_pipeline.schemas.columns as col
from assignar_pipeline.schemas.common import (
    _CENT,
    _END_US,
    _FIRST_DAY,
    _FIRST_US,
    _INT_MAX,
    _MISSING,
    _QUANTITY_LIMIT,
    Errors,
    Read,
    Spec,
    _bool,
    _date,
    _date_range,
    _holds,
    _id,
    _instant,
    _instant_range,
    _int,
    _int32,
    _key,
    _kind,
    _list,
    _max_length,
    _micros,
    _no_control,
    _positive,
    _quantity,
    _str,
    _utc,
)

# --------------------------------------------------------------------------- models
# Column conventions: see `common` ("Frame models").


class OrderFrame(pa.DataFrameModel):
    id: Series[pd.Int64Dtype] = _id()
    start_date: Series[pd.Int64Dtype] = pa.Field(nullable=False)
    end_date: Series[pd.Int64Dtype] = pa.Field(nullable=True)
    job_number: Series[object] = pa.Field(nullable=True)
    po_number: Series[object] = pa.Field(nullable=True)
    project_id: Series[pd.Int64Dtype] = pa.Field(nullable=True)
    client_id: Series[pd.Int64Dtype] = pa.Field(nullable=True)
    status_id: Series[pd.Int64Dtype] = pa.Field(nullable=False)
    job_description: Series[object] = pa.Field(nullable=True)
    active: Series[pd.BooleanDtype] = pa.Field(nullable=False)
    modified_time: Series[pd.Int64Dtype] = pa.Field(nullable=False)

    _ids = _positive("id", "project_id", "client_id", "status_id")
    _small = _int32("status_id")
    _dates = _date_range(_FIRST_DAY, "start_date", "end_date")
    _numbers = _max_length(100, "job_number", "po_number")
    _numbers_text = _no_control("job_number", "po_number")
    _description_text = _no_control("job_description", multiline=True)
    _modified = _instant_range("modified_time")

    @pa.dataframe_check(error="end_date: must not be before start_date")
    def _ends_after_start(cls, df: pd.DataFrame) -> pd.Series:
        return _holds(df["end_date"] >= df["start_date"])


class OrderActivityFrame(pa.DataFrameModel):
    """One row per order activity; reasons name `activities[i].<field>`."""

    external_id: Series[object] = pa.Field(nullable=True)
    name: Series[object] = pa.Field(nullable=True)
    quantity: Series[object] = pa.Field(nullable=True)
    uom_code: Series[object] = pa.Field(nullable=True)

    _codes = _max_length(100, "external_id")
    _names = _max_length(300, "name")
    _units = _max_length(20, "uom_code")
    _text = _no_control("external_id", "name", "uom_code")

    @pa.check("quantity", name="quantity_range", error=f"must be >= 0 and < {_QUANTITY_LIMIT:,}")
    def _quantity_range(cls, s: pd.Series) -> pd.Series:
        return s.map(lambda q: 0 <= q < _QUANTITY_LIMIT).astype(bool)

    @pa.check("quantity", name="quantity_places", error="must have at most 2 decimal places")
    def _quantity_places(cls, s: pd.Series) -> pd.Series:
        # Out-of-range values are reported by the range check; quantize could overflow on them.
        return s.map(lambda q: not 0 <= q < _QUANTITY_LIMIT or q == q.quantize(_CENT)).astype(bool)


def _read_order(rec: dict[str, Any], errs: Errors, zone: ZoneInfo, zone_name: str) -> Read:
    get = rec.get
    rid = _int(get("id", _MISSING), "id", errs)
    modified = _instant(get("modified_time", _MISSING), "modified_time", errs)
    start = _date(get("start_date", _MISSING), "start_date", errs)
    end = _date(get("end_date"), "end_date", errs)
    job_number = _key(get("job_number"), "job_number", errs)
    po_number = _key(get("po_number"), "po_number", errs)
    project_id = _int(get("project_id"), "project_id", errs)
    client_id = _int(get("client_id"), "client_id", errs)
    status_id = _int(get("status_id", _MISSING), "status_id", errs)
    description = _str(get("job_description"), "job_description", errs)
    active = _bool(get("active", _MISSING), "active", errs)
    children: list[dict[str, Any]] = []
    lines: list[dict[str, Any]] = []
    for i, item in enumerate(_list(get("activities"), "activities", errs)):
        p = f"activities[{i}]"
        if not isinstance(item, dict):
            errs.append((p, f"must be an object, not {_kind(item)}"))
            continue
        cost_code = _key(item.get("external_id"), f"{p}.external_id", errs)
        name = _str(item.get("name"), f"{p}.name", errs)
        quantity = _quantity(item.get("quantity"), f"{p}.quantity", errs)
        unit = _str(item.get("uom_code"), f"{p}.uom_code", errs)
        children.append(
            {
                "_i": i,
                "external_id": cost_code,
                "name": name,
                "quantity": quantity,
                "uom_code": unit,
            }
        )
        # The quantity becomes its "51.00" text once the record is known to be valid.
        lines.append(
            {"cost_code": cost_code, "description": name, "quantity": quantity, "unit": unit}
        )
    frame = {
        "id": rid,
        "start_date": None if start is None else start.toordinal(),
        "end_date": None if end is None else end.toordinal(),
        "job_number": job_number,
        "po_number": po_number,
        "project_id": project_id,
        "client_id": client_id,
        "status_id": status_id,
        "job_description": description,
        "active": active,
        "modified_time": _micros(modified),
    }
    row = {
        "assignar_id": rid,
        "work_date": start,
        "end_date": end,
        "job_number": job_number,
        "po_number": po_number,
        "project_assignar_id": project_id,
        "client_assignar_id": client_id,
        "status_id": status_id,
        "description": description,
        "active": active,
        "lines": lines,
        "modified_time": _utc(modified),
    }
    return frame, row, children


def _finish_order(row: dict[str, Any]) -> None:
    for line in row["lines"]:
        quantity = line["quantity"]
        if quantity is not None:
            line["quantity"] = f"{quantity.quantize(_CENT):f}"


#: The staging row's columns (see `columns`).
KINDS = {
    "assignar_id": "int",
    "work_date": "date",
    "end_date": "date",
    "job_number": "text",
    "po_number": "text",
    "project_assignar_id": "int",
    "client_assignar_id": "int",
    "status_id": "int",
    "description": "text",
    "active": "bool",
    "lines": "json",
    "modified_time": "instant",
    "content_hash": "content_hash",
}

_FIELDS = (
    "id",
    "modified_time",
    "start_date",
    "end_date",
    "job_number",
    "po_number",
    "project_id",
    "client_id",
    "status_id",
    "job_description",
    "active",
    "activities",
)
_ACTIVITY_FIELDS = ("external_id", "name", "quantity", "uom_code")
_BAD = object()


def _quantity_text(value: Any) -> Any:
    """A quantity's "51.00" text, None for none, `_BAD` when the reader would refuse it."""
    if value is None:
        return None
    errs: Errors = []
    number = _quantity(value, "quantity", errs)
    if errs or number is None or not 0 <= number < _QUANTITY_LIMIT:
        return _BAD
    if number != number.quantize(_CENT):
        return _BAD
    return f"{number.quantize(_CENT):f}"


def _quantity_texts(values: np.ndarray) -> np.ndarray:
    """`_quantity_text` of every value. Decimals (and nulls), the usual case, are computed once
    per distinct exact text: equal Decimals may still differ in exponent or sign (1.0 and 1.00,
    0 and -0), and their text tells them apart."""
    if set(map(type, values)) <= {Decimal, type(None)}:
        exact = np.where(col.nulls(values), None, np.fromiter(map(str, values), dtype=object,
                                                              count=len(values)))  # fmt: skip
        return col.per_value(exact, lambda text: _quantity_text(Decimal(text)))
    return np.array([_quantity_text(q) for q in values] + [None], dtype=object)[:-1]


def _date_column(values: np.ndarray, *, required: bool) -> tuple[np.ndarray, np.ndarray]:
    """(days since 1970 as int64, NaT for null; ok) of strict YYYY-MM-DD texts in range."""
    column, ok = col.texts(values, required=required)
    days = col.per_value(column, col.ordinal_of)
    ok &= ~col.nulls(days) | col.nulls(column)
    return np.where(col.nulls(days), col.NAT, days).astype(np.int64), ok


_LINE = '{"cost_code":%s,"description":%s,"quantity":%s,"unit":%s}'


def screen(records: list[dict[str, Any]], fallback_name: str) -> tuple[np.ndarray, pd.DataFrame]:
    """(ok mask, frame of staging rows) of a chunk of dict records, column by column (see
    `timesheets.screen`); activities become one array entry each."""
    n = len(records)
    f = col.fields(records, _FIELDS)
    rid, ok = col.ints(f["id"], required=True)
    ok &= ~pd.Series(rid).duplicated(keep=False).to_numpy()
    modified_us, good = col.instants(
        f["modified_time"], required=True, first_us=_FIRST_US, end_us=_END_US
    )
    ok &= good
    start, good = _date_column(f["start_date"], required=True)
    ok &= good
    end, good = _date_column(f["end_date"], required=False)
    ok &= good & ((end == col.NAT) | (end >= start))
    job_number, good = col.keys(f["job_number"], 100)
    ok &= good
    po_number, good = col.keys(f["po_number"], 100)
    ok &= good
    project, good = col.ints(f["project_id"], required=False)
    ok &= good
    client, good = col.ints(f["client_id"], required=False)
    ok &= good
    status, good = col.ints(f["status_id"], required=True, high=_INT_MAX)
    ok &= good
    description, good = col.texts(f["job_description"], required=False)
    ok &= good & ((col.per_value(description, col.plain_multiline) == True)  # noqa: E712
                  | col.nulls(description))  # fmt: skip
    active, good = col.bools(f["active"], required=True)
    ok &= good

    lists = f["activities"]
    if col.all_of_type(lists, list):  # the usual case, without bytecode per record
        counts = np.fromiter(map(len, lists), dtype=np.int64, count=n)
        items = list(chain.from_iterable(lists))
    else:
        counts = np.array([len(v) if type(v) is list else -1 for v in lists], dtype=np.int64)
        ok &= (counts >= 0) | col.nulls(lists)
        counts = np.maximum(counts, 0)
        items = [a for v in lists if type(v) is list for a in v]
    parent = np.repeat(np.arange(n), counts)
    if col.all_of_type(items, dict):
        item_ok = np.ones(len(items), dtype=bool)
        a = col.fields(items, _ACTIVITY_FIELDS)
    else:
        item_ok = np.array([type(a) is dict for a in items], dtype=bool)
        a = col.fields([x if type(x) is dict else {} for x in items], _ACTIVITY_FIELDS)
    codes, good = col.keys(a["external_id"], 100)
    item_ok &= good
    names, good = col.texts(a["name"], required=False)
    item_ok &= good & ((col.per_value(names, col.plain_text(300)) == True) | col.nulls(names))  # noqa: E712
    units, good = col.texts(a["uom_code"], required=False)
    item_ok &= good & ((col.per_value(units, col.plain_text(20)) == True) | col.nulls(units))  # noqa: E712
    quantities = _quantity_texts(a["quantity"])
    item_ok &= np.array([q is not _BAD for q in quantities], dtype=bool)
    ok &= np.bincount(parent[~item_ok], minlength=n) == 0

    def json_of(values: np.ndarray) -> np.ndarray:
        texts = col.json_strings(np.where(item_ok, values, None))
        return np.where(col.nulls(texts), "null", texts).astype(object)

    line_values = zip(
        json_of(codes).tolist(),
        json_of(names).tolist(),
        json_of(quantities).tolist(),
        json_of(units).tolist(),
        strict=True,
    )
    line_texts = np.fromiter(map(_LINE.__mod__, line_values), dtype=object, count=len(items))
    lines = col.join_lines(line_texts, counts)

    frame = pd.DataFrame(
        {
            "assignar_id": rid,
            "work_date": col.date_column(np.where(ok, start, col.NAT)),
            "end_date": col.date_column(np.where(ok, end, col.NAT)),
            "job_number": job_number,
            "po_number": po_number,
            "project_assignar_id": project,
            "client_assignar_id": client,
            "status_id": status,
            "description": description,
            "active": active,
            "lines": lines,
            "modified_time": col.utc_column(modified_us),
        }
    )
    return ok, frame


SPEC = Spec(
    _read_order,
    OrderFrame,
    OrderActivityFrame,
    "activities",
    _finish_order,
    kinds=KINDS,
    screen=screen,
)

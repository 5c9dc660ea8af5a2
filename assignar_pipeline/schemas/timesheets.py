"""Timesheets with their activity entries: frame models and the reader of one record."""

from __future__ import annotations

from datetime import date
from itertools import chain
from operator import methodcaller
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

import assignar_pipeline.schemas.columns as col
from assignar_pipeline.schemas.common import (
    _CLOCK,
    _CONTROL,
    _DAY_MINUTES,
    _DURATION,
    _END_US,
    _FIRST_DAY,
    _FIRST_US,
    _MISSING,
    _NAIVE_EPOCH,
    _US,
    Errors,
    Read,
    Spec,
    _bool,
    _date,
    _date_range,
    _hhmm,
    _holds,
    _id,
    _instant,
    _instant_range,
    _int,
    _key,
    _kind,
    _list,
    _max_length,
    _micros,
    _minutes_range,
    _naive,
    _no_control,
    _not_blank,
    _object,
    _positive,
    _str,
    _utc,
    _zone,
    _zone_names,
)

# --------------------------------------------------------------------------- models
# Column conventions: see `common` ("Frame models").


class TimesheetFrame(pa.DataFrameModel):
    id: Series[pd.Int64Dtype] = _id()
    user_id: Series[pd.Int64Dtype] = pa.Field(nullable=False)
    project_id: Series[pd.Int64Dtype] = pa.Field(nullable=True)
    task_id: Series[pd.Int64Dtype] = pa.Field(nullable=True)
    order_id: Series[pd.Int64Dtype] = pa.Field(nullable=True)
    start_datetime: Series[pd.Int64Dtype] = pa.Field(nullable=False)
    end_datetime: Series[pd.Int64Dtype] = pa.Field(nullable=False)
    total_time: Series[pd.Int64Dtype] = pa.Field(nullable=False)
    status: Series[object] = pa.Field(nullable=False)
    processed_at: Series[pd.Int64Dtype] = pa.Field(nullable=True)
    submitted_date: Series[pd.Int64Dtype] = pa.Field(nullable=True)
    start_time: Series[pd.Int64Dtype] = pa.Field(nullable=True)
    end_time: Series[pd.Int64Dtype] = pa.Field(nullable=True)
    modified_time: Series[pd.Int64Dtype] = pa.Field(nullable=False)
    local_start_date: Series[pd.Int64Dtype] = pa.Field(nullable=True, alias="_local_start_date")
    local_start_time: Series[pd.Int64Dtype] = pa.Field(nullable=True, alias="_local_start_time")
    local_end_time: Series[pd.Int64Dtype] = pa.Field(nullable=True, alias="_local_end_time")
    entry_minutes: Series[pd.Int64Dtype] = pa.Field(nullable=True, alias="_entry_minutes")
    shift_length: Series[pd.Int64Dtype] = pa.Field(nullable=True, alias="_shift_length")

    _ids = _positive("id", "user_id", "project_id", "task_id", "order_id")
    _instants = _instant_range("start_datetime", "end_datetime", "processed_at", "modified_time")
    _total = _minutes_range("total_time")
    _clock = _minutes_range("start_time", "end_time", limit=_DAY_MINUTES - 1)
    _work_date = _date_range(_FIRST_DAY, "submitted_date")
    _status_length = _max_length(60, "status")
    _status_text = _no_control("status")
    _status_named = _not_blank("status")

    @pa.dataframe_check(error="end_datetime: must be after start_datetime")
    def _end_after_start(cls, df: pd.DataFrame) -> pd.Series:
        return _holds(df["end_datetime"] > df["start_datetime"])

    @pa.dataframe_check(error="end_datetime: must be at most 24 hours after start_datetime")
    def _at_most_a_day(cls, df: pd.DataFrame) -> pd.Series:
        return _holds(df["end_datetime"] - df["start_datetime"] <= _DAY_MINUTES * 60_000_000)

    @pa.dataframe_check(
        error="total_time: must not exceed the time between start_datetime and end_datetime"
    )
    def _total_within_shift(cls, df: pd.DataFrame) -> pd.Series:
        return _holds(df["total_time"] * 60_000_000 <= df["_shift_length"])

    @pa.dataframe_check(
        error="activity_entries: durations must not add up to more than the time between "
        "start_datetime and end_datetime"
    )
    def _entries_within_shift(cls, df: pd.DataFrame) -> pd.Series:
        return _holds(df["_entry_minutes"] * 60_000_000 <= df["_shift_length"])

    @pa.dataframe_check(
        error="submitted_date: must be the local date of start_datetime in the timesheet's "
        "time zone"
    )
    def _submitted_is_local_start_date(cls, df: pd.DataFrame) -> pd.Series:
        return _holds(df["submitted_date"] == df["_local_start_date"])

    @pa.dataframe_check(
        error="start_time: must be the local time of start_datetime in the timesheet's time zone"
    )
    def _start_time_is_local(cls, df: pd.DataFrame) -> pd.Series:
        return _holds(df["start_time"] == df["_local_start_time"])

    @pa.dataframe_check(
        error="end_time: must be the local time of end_datetime in the timesheet's time zone"
    )
    def _end_time_is_local(cls, df: pd.DataFrame) -> pd.Series:
        return _holds(df["end_time"] == df["_local_end_time"])


class ActivityEntryFrame(pa.DataFrameModel):
    """One row per timesheet activity entry; reasons name `activity_entries[i].<field>`."""

    id: Series[pd.Int64Dtype] = pa.Field(nullable=False)
    duration: Series[pd.Int64Dtype] = pa.Field(nullable=False)
    start_at: Series[pd.Int64Dtype] = pa.Field(nullable=True)
    start_at_tz: Series[object] = pa.Field(nullable=True)
    start_at_naive: Series[pd.Int64Dtype] = pa.Field(nullable=True)  # wall time, naive epoch
    cost_code: Series[object] = pa.Field(nullable=True, alias="activity.external_id")
    naive_matches: Series[pd.BooleanDtype] = pa.Field(nullable=True, alias="_naive_matches")
    unique_wall_time: Series[pd.BooleanDtype] = pa.Field(nullable=True, alias="_unique_wall_time")

    _ids = _positive("id")
    _minutes = _minutes_range("duration")
    _instants = _instant_range("start_at", "start_at_naive")
    _codes = _max_length(100, "activity.external_id")
    _text = _no_control("activity.external_id")

    @pa.check("start_at_tz", name="time_zone", error="must be an IANA time zone name")
    def _known_zone(cls, s: pd.Series) -> pd.Series:
        return s.isin(_zone_names())

    @pa.dataframe_check(error="start_at_naive: must be start_at as local time in start_at_tz")
    def _naive_matches(cls, df: pd.DataFrame) -> pd.Series:
        return _holds(df["_naive_matches"])

    @pa.dataframe_check(
        error="start_at_naive: must be a local time that occurs exactly once in start_at_tz "
        "(not skipped or repeated by a daylight-saving change)"
    )
    def _wall_time_exists(cls, df: pd.DataFrame) -> pd.Series:
        return _holds(df["_unique_wall_time"])


def _read_entry(entry: dict[str, Any], errs: Errors) -> tuple[dict[str, Any], ZoneInfo | None]:
    """One activity entry's frame values (field names relative to the entry) and its zone."""
    get = entry.get
    eid = _int(get("id", _MISSING), "id", errs)
    minutes = _int(get("duration", _MISSING), "duration", errs)
    tz_name = _str(get("start_at_tz"), "start_at_tz", errs)
    start_at = _instant(get("start_at"), "start_at", errs)
    naive = _naive(get("start_at_naive"), "start_at_naive", errs)
    is_naive = _bool(get("is_naive_datetime"), "is_naive_datetime", errs)
    activity = _object(get("activity"), "activity", errs)
    cost_code = _key(activity.get("external_id"), "activity.external_id", errs)
    zone = _zone(tz_name)
    start_us = _micros(start_at)
    naive_us = None if naive is None else (naive - _NAIVE_EPOCH) // _US
    matches = unique = None
    if naive_us is not None and zone is not None and _FIRST_US <= naive_us < _END_US:
        if is_naive:
            # Only the wall time is known: it must name exactly one instant in the zone.
            earlier = naive.replace(tzinfo=zone, fold=0).utcoffset()  # type: ignore[union-attr]
            later = naive.replace(tzinfo=zone, fold=1).utcoffset()  # type: ignore[union-attr]
            unique = earlier == later
        elif start_at is not None and start_us is not None and _FIRST_US <= start_us < _END_US:
            matches = start_at.astimezone(zone).replace(tzinfo=None) == naive
    frame = {
        "id": eid,
        "duration": minutes,
        "start_at": start_us,
        "start_at_tz": tz_name,
        "start_at_naive": naive_us,
        "activity.external_id": cost_code,
        "_naive_matches": matches,
        "_unique_wall_time": unique,
    }
    return frame, zone


def _read_timesheet(
    rec: dict[str, Any], errs: Errors, fallback: ZoneInfo, fallback_name: str
) -> Read:
    get = rec.get
    rid = _int(get("id", _MISSING), "id", errs)
    modified = _instant(get("modified_time", _MISSING), "modified_time", errs)
    user_id = _int(get("user_id", _MISSING), "user_id", errs)
    project_id = _int(get("project_id"), "project_id", errs)
    task_id = _int(get("task_id"), "task_id", errs)
    order_id = _int(get("order_id"), "order_id", errs)
    start = _instant(get("start_datetime", _MISSING), "start_datetime", errs)
    end = _instant(get("end_datetime", _MISSING), "end_datetime", errs)
    total = _hhmm(get("total_time", _MISSING), "total_time", errs, _DURATION)
    status = _str(get("status", _MISSING), "status", errs)
    processed_at = _instant(get("processed_at"), "processed_at", errs)
    submitted = _date(get("submitted_date"), "submitted_date", errs)
    start_time = _hhmm(get("start_time"), "start_time", errs, _CLOCK)
    end_time = _hhmm(get("end_time"), "end_time", errs, _CLOCK)

    children: list[dict[str, Any]] = []
    lines: list[dict[str, Any]] = []
    entry_minutes: int | None = 0
    zone_name: str | None = None
    zone: ZoneInfo | None = None
    for i, entry in enumerate(_list(get("activity_entries"), "activity_entries", errs)):
        if not isinstance(entry, dict):
            errs.append((f"activity_entries[{i}]", f"must be an object, not {_kind(entry)}"))
            continue
        entry_errs: Errors = []
        values, entry_zone = _read_entry(entry, entry_errs)
        if entry_errs:
            errs.extend((f"activity_entries[{i}].{f}", m) for f, m in entry_errs)
        values["_i"] = i
        children.append(values)
        minutes = values["duration"]
        if minutes is not None and not 0 <= minutes <= _DAY_MINUTES:
            minutes = None  # the entry frame reports it; a sum of huge values would overflow
        lines.append(
            {
                "ref": values["id"],
                "cost_code": values["activity.external_id"],
                "minutes": values["duration"],
            }
        )
        if minutes is None or entry_minutes is None:
            entry_minutes = None
        else:
            entry_minutes += minutes
        if zone_name is None and values["start_at_tz"] is not None:
            # The first entry that names a zone decides; an unknown name is reported by the
            # entry frame and leaves `zone` None, so no local-time checks run against it.
            zone_name, zone = values["start_at_tz"], entry_zone
    if zone_name is None:
        zone_name, zone = fallback_name, fallback

    start_us, end_us = _micros(start), _micros(end)
    local_start = local_end = None
    if zone is not None:
        if start_us is not None and _FIRST_US <= start_us < _END_US:
            local_start = start.astimezone(zone)  # type: ignore[union-attr]
        if end_us is not None and _FIRST_US <= end_us < _END_US:
            local_end = end.astimezone(zone)  # type: ignore[union-attr]
    # How long the shift is, in real time or by the clock, whichever is longer: the two differ
    # on a DST night and Assignar may count either way (pay-domain §4.10).
    shift_length = None
    if start_us is not None and end_us is not None:
        shift_length = end_us - start_us
        if local_start is not None and local_end is not None:
            # By the clock = real time + the change of UTC offset between start and end.
            offset_change = local_end.utcoffset() - local_start.utcoffset()  # type: ignore[operator]
            if offset_change:
                shift_length = max(shift_length, shift_length + offset_change // _US)
    frame = {
        "id": rid,
        "user_id": user_id,
        "project_id": project_id,
        "task_id": task_id,
        "order_id": order_id,
        "start_datetime": start_us,
        "end_datetime": end_us,
        "total_time": total,
        "status": status,
        "processed_at": _micros(processed_at),
        "submitted_date": None if submitted is None else submitted.toordinal(),
        "start_time": start_time,
        "end_time": end_time,
        "modified_time": _micros(modified),
        "_local_start_date": None if local_start is None else local_start.toordinal(),
        "_local_start_time": None
        if local_start is None
        else local_start.hour * 60 + local_start.minute,
        "_local_end_time": None if local_end is None else local_end.hour * 60 + local_end.minute,
        "_entry_minutes": entry_minutes,
        "_shift_length": shift_length,
    }
    row = {
        "assignar_id": rid,
        "work_date": None if local_start is None else local_start.date(),
        "user_assignar_id": user_id,
        "project_assignar_id": project_id,
        "task_assignar_id": task_id,
        "order_assignar_id": order_id,
        "start_at": _utc(start),
        "end_at": _utc(end),
        "timezone": zone_name,
        "total_minutes": total,
        "status": status,
        "processed": processed_at is not None,
        "lines": lines,
        "modified_time": _utc(modified),
    }
    return frame, row, children


# --------------------------------------------------------------------------- vectorised screen
KINDS = {
    "assignar_id": "int",
    "work_date": "date",
    "user_assignar_id": "int",
    "project_assignar_id": "int",
    "task_assignar_id": "int",
    "order_assignar_id": "int",
    "start_at": "instant",
    "end_at": "instant",
    "timezone": "text",
    "total_minutes": "int",
    "status": "text",
    "processed": "bool",
    "lines": "json",
    "modified_time": "instant",
    "content_hash": "content_hash",
}
_MINUTE_US = 60_000_000
_UNIX_ORDINAL = date(1970, 1, 1).toordinal()
_DAY_US = _DAY_MINUTES * _MINUTE_US
_NAT = np.iinfo(np.int64).min


def _minutes_of(text: str, pattern: Any) -> int | None:
    match = pattern.fullmatch(text)
    return None if match is None else int(match[1]) * 60 + int(match[2])


def _status_ok(text: str) -> bool:
    return len(text) <= 60 and bool(text.strip()) and _CONTROL.search(text) is None


def _minutes(values: np.ndarray, pattern: Any, *, required: bool) -> tuple[np.ndarray, np.ndarray]:
    """(minutes as int64 with -1 for null, ok) of HH:MM texts, parsed once per distinct text."""
    column, ok = col.texts(values, required=required)
    parsed = col.per_value(column, lambda t: _minutes_of(t, pattern))
    got = ~col.nulls(parsed)
    ok &= got | col.nulls(column)
    return np.where(got, parsed, -1).astype(np.int64), ok


def _local_micros(utc_micros: np.ndarray, zones: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Wall-clock microseconds of UTC instants in each row's zone, for `rows` (else NaT)."""
    local = np.full(len(utc_micros), col.NAT, dtype=np.int64)
    rows = np.flatnonzero(rows & (utc_micros != col.NAT))
    # Zones as small ints first: comparing ints costs far less than comparing str objects.
    codes, names = pd.factorize(zones[rows])
    for code, zone in enumerate(names):
        these = rows[codes == code]
        instants = pd.DatetimeIndex(utc_micros[these].view("datetime64[us]")).tz_localize("UTC")
        local[these] = instants.tz_convert(zone).tz_localize(None).as_unit("us").asi8
    return local


_FIELDS = (
    "id",
    "user_id",
    "project_id",
    "task_id",
    "order_id",
    "start_datetime",
    "end_datetime",
    "total_time",
    "status",
    "processed_at",
    "submitted_date",
    "start_time",
    "end_time",
    "modified_time",
    "activity_entries",
)
_ENTRY_FIELDS = ("id", "duration", "start_at_tz", "start_at", "start_at_naive",
                 "is_naive_datetime", "activity")  # fmt: skip
_DAY_US = 86_400_000_000
_LINE = '{"cost_code":%s,"minutes":%d,"ref":%d}'
_EXTERNAL_ID = methodcaller("get", "external_id")


def screen(records: list[dict[str, Any]], fallback_name: str) -> tuple[np.ndarray, pd.DataFrame]:
    """(ok mask, frame of staging rows) of a chunk of dict records, column by column: ok rows
    are valid and their frame rows are what the reader would give; the others must go through
    the reader (which names their reasons). Conservative: a shape the reader accepts but this
    does not know (e.g. a date-time without seconds) only costs that record the slower path."""
    n = len(records)
    f = col.fields(records, _FIELDS)
    bounds = {"first_us": _FIRST_US, "end_us": _END_US}

    rid, ok = col.ints(f["id"], required=True)
    ok &= ~pd.Series(rid).duplicated(keep=False).to_numpy()
    user, good = col.ints(f["user_id"], required=True)
    ok &= good
    project, good = col.ints(f["project_id"], required=False)
    ok &= good
    task, good = col.ints(f["task_id"], required=False)
    ok &= good
    order, good = col.ints(f["order_id"], required=False)
    ok &= good
    start_us, good = col.instants(f["start_datetime"], required=True, **bounds)
    ok &= good
    end_us, good = col.instants(f["end_datetime"], required=True, **bounds)
    ok &= good
    modified_us, good = col.instants(f["modified_time"], required=True, **bounds)
    ok &= good
    processed_us, good = col.instants(f["processed_at"], required=False, **bounds)
    ok &= good
    total, good = _minutes(f["total_time"], _DURATION, required=True)
    ok &= good & (total <= _DAY_MINUTES)
    start_time, good = _minutes(f["start_time"], _CLOCK, required=False)
    ok &= good
    end_time, good = _minutes(f["end_time"], _CLOCK, required=False)
    ok &= good
    status, good = col.texts(f["status"], required=True)
    ok &= good & (col.per_value(status, _status_ok) == True)  # noqa: E712
    submitted_text, good = col.texts(f["submitted_date"], required=False)
    submitted = col.per_value(submitted_text, col.ordinal_of)
    ok &= good & (~col.nulls(submitted) | col.nulls(submitted_text))
    submitted = np.where(col.nulls(submitted), -(2**40), submitted).astype(np.int64)

    # Activity entries, one row each, `parent` being the timesheet's row.
    lists = f["activity_entries"]
    if col.all_of_type(lists, list):  # the usual case, without bytecode per record
        counts = np.fromiter(map(len, lists), dtype=np.int64, count=n)
        entries = list(chain.from_iterable(lists))
    else:
        counts = np.array([len(v) if type(v) is list else -1 for v in lists], dtype=np.int64)
        ok &= (counts >= 0) | col.nulls(lists)
        counts = np.maximum(counts, 0)
        entries = [e for v in lists if type(v) is list for e in v]
    parent = np.repeat(np.arange(n), counts)
    if col.all_of_type(entries, dict):
        entry_ok = np.ones(len(entries), dtype=bool)
        e = col.fields(entries, _ENTRY_FIELDS)
    else:
        entry_ok = np.array([type(e) is dict for e in entries], dtype=bool)
        e = col.fields([x if type(x) is dict else {} for x in entries], _ENTRY_FIELDS)
    entry_id, good = col.ints(e["id"], required=True)
    entry_ok &= good
    duration, good = col.ints(e["duration"], required=True, low=0, high=_DAY_MINUTES)
    entry_ok &= good
    entry_zone, good = col.texts(e["start_at_tz"], required=False)
    entry_ok &= good
    zone_known = col.per_value(entry_zone, _zone_names().__contains__) == True  # noqa: E712
    entry_ok &= zone_known | col.nulls(entry_zone)
    start_at_us, good = col.instants(e["start_at"], required=False, **bounds)
    entry_ok &= good
    naive_us, good = col.naive_instants(e["start_at_naive"], **bounds)
    entry_ok &= good
    is_naive, good = col.bools(e["is_naive_datetime"], required=False)
    entry_ok &= good
    activities = e["activity"]
    try:  # only a dict has .get among JSON values: this fails for any other activity
        codes = np.fromiter(map(_EXTERNAL_ID, activities), dtype=object, count=len(activities))
    except AttributeError:
        entry_ok &= np.array([a is None or type(a) is dict for a in activities], dtype=bool)
        codes = np.fromiter(
            [a.get("external_id") if type(a) is dict else None for a in activities],
            dtype=object,
            count=len(activities),
        )
    codes, good = col.keys(codes, 100)
    entry_ok &= good

    # The wall time an entry states must be its instant's (or exist exactly once).
    naive_flag = is_naive.to_numpy(dtype=bool, na_value=False)
    check_match = zone_known & (naive_us != col.NAT) & ~naive_flag & (start_at_us != col.NAT)
    entry_ok &= ~check_match | (_local_micros(start_at_us, entry_zone, check_match) == naive_us)
    check_unique = zone_known & (naive_us != col.NAT) & naive_flag
    for zone in pd.unique(entry_zone[check_unique]):
        these = check_unique & (entry_zone == zone)
        walls = pd.DatetimeIndex(naive_us[these].view("datetime64[us]"))
        placed = walls.tz_localize(zone, ambiguous="NaT", nonexistent="NaT")
        entry_ok[these] &= ~placed.isna()
    ok &= np.bincount(parent[~entry_ok], minlength=n) == 0

    # The timesheet's zone: the first entry's that names one, else the connection's.
    zones = np.full(n, fallback_name, dtype=object)
    named = ~col.nulls(entry_zone)
    first_parents, first_at = np.unique(parent[named], return_index=True)
    zones[first_parents] = entry_zone[named][first_at]
    local_start = _local_micros(start_us, zones, ok)  # an unknown zone already failed its row
    local_end = _local_micros(end_us, zones, ok)
    ok &= (local_start != col.NAT) & (local_end != col.NAT)
    shift = end_us - start_us
    ok &= (shift > 0) & (shift <= _DAY_US)
    # In real time or by the clock, whichever is longer (they differ on a DST night).
    shift = shift + np.maximum((local_end - end_us) - (local_start - start_us), 0)
    ok &= total * _MINUTE_US <= shift
    durations = np.where(entry_ok, duration.to_numpy(dtype=np.int64, na_value=0), 0)
    entry_minutes = np.bincount(parent, weights=durations, minlength=n).astype(np.int64)
    ok &= entry_minutes * _MINUTE_US <= shift
    local_day = np.floor_divide(local_start, _DAY_US)
    ok &= (submitted == -(2**40)) | (submitted == local_day)
    ok &= (start_time < 0) | (start_time == (local_start % _DAY_US) // _MINUTE_US)
    ok &= (end_time < 0) | (end_time == (local_end % _DAY_US) // _MINUTE_US)

    # Lines: [{"cost_code", "minutes", "ref"}] as JSON text, entries joined per timesheet.
    code_texts = np.where(col.nulls(codes), "null", col.json_strings(codes))
    line_values = zip(
        code_texts.tolist(),
        durations.tolist(),
        entry_id.to_numpy(dtype=np.int64, na_value=0).tolist(),
        strict=True,
    )
    line_texts = np.fromiter(map(_LINE.__mod__, line_values), dtype=object, count=len(entries))
    lines = col.join_lines(line_texts, counts)

    work_date = col.date_column(np.where(ok, local_day, col.NAT))
    frame = pd.DataFrame(
        {
            "assignar_id": rid,
            "work_date": work_date,
            "user_assignar_id": user,
            "project_assignar_id": project,
            "task_assignar_id": task,
            "order_assignar_id": order,
            "start_at": col.utc_column(start_us),
            "end_at": col.utc_column(end_us),
            "timezone": zones,
            "total_minutes": pd.array(np.where(ok, total, 0), dtype="Int64"),
            "status": status,
            "processed": pd.array(processed_us != col.NAT, dtype="boolean"),
            "lines": lines,
            "modified_time": col.utc_column(modified_us),
        }
    )
    return ok, frame


SPEC = Spec(
    _read_timesheet,
    TimesheetFrame,
    ActivityEntryFrame,
    "activity_entries",
    kinds=KINDS,
    screen=screen,
)

"""Workers (`/users`): the frame model and the reader of one record."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from assignar_pipeline.schemas.common import (
    _FIRST_DOB,
    _MISSING,
    Errors,
    Read,
    Spec,
    _bool,
    _date,
    _date_range,
    _id,
    _instant,
    _instant_range,
    _int,
    _int32,
    _key,
    _max_length,
    _micros,
    _no_control,
    _not_blank,
    _positive,
    _str,
    _utc,
)

# --------------------------------------------------------------------------- models
# Column conventions: see `common` ("Frame models").


class WorkerFrame(pa.DataFrameModel):
    id: Series[pd.Int64Dtype] = _id()
    employee_id: Series[object] = pa.Field(nullable=True)
    first_name: Series[object] = pa.Field(nullable=False)
    last_name: Series[object] = pa.Field(nullable=False)
    email: Series[object] = pa.Field(nullable=True)
    dob: Series[pd.Int64Dtype] = pa.Field(nullable=True)
    employment_type: Series[pd.Int64Dtype] = pa.Field(nullable=True)
    active: Series[pd.BooleanDtype] = pa.Field(nullable=False)
    modified_time: Series[pd.Int64Dtype] = pa.Field(nullable=False)

    _ids = _positive("id", "employment_type")
    _small = _int32("employment_type")
    _keys = _max_length(100, "employee_id", "first_name", "last_name")
    _emails = _max_length(320, "email")
    _text = _no_control("employee_id", "first_name", "last_name", "email")
    _named = _not_blank("first_name")
    _born = _date_range(_FIRST_DOB, "dob")
    _modified = _instant_range("modified_time")


def _read_worker(rec: dict[str, Any], errs: Errors, zone: ZoneInfo, zone_name: str) -> Read:
    get = rec.get
    rid = _int(get("id", _MISSING), "id", errs)
    modified = _instant(get("modified_time", _MISSING), "modified_time", errs)
    employee_id = _key(get("employee_id"), "employee_id", errs)
    first = _str(get("first_name", _MISSING), "first_name", errs)
    last = _str(get("last_name", _MISSING), "last_name", errs)
    email = _key(get("email"), "email", errs)
    dob = _date(get("dob"), "dob", errs)
    employment_type = _int(get("employment_type"), "employment_type", errs)
    active = _bool(get("active", _MISSING), "active", errs)
    frame = {
        "id": rid,
        "employee_id": employee_id,
        "first_name": first,
        "last_name": last,
        "email": email,
        "dob": None if dob is None else dob.toordinal(),
        "employment_type": employment_type,
        "active": active,
        "modified_time": _micros(modified),
    }
    row = {
        "assignar_id": rid,
        "employee_id": employee_id,
        "first_name": first,
        "last_name": last,
        "email": email,
        "dob": dob,
        "employment_type": employment_type,
        "active": active,
        "modified_time": _utc(modified),
    }
    return frame, row, []


#: The staging row's columns (see `columns`).
KINDS = {
    "assignar_id": "int",
    "employee_id": "text",
    "first_name": "text",
    "last_name": "text",
    "email": "text",
    "dob": "date",
    "employment_type": "int",
    "active": "bool",
    "modified_time": "instant",
    "content_hash": "content_hash",
}

SPEC = Spec(_read_worker, WorkerFrame, kinds=KINDS)

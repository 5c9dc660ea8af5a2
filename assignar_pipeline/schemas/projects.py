"""Projects: the frame model and the reader of one `/projects` record."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from assignar_pipeline.schemas.common import (
    _MISSING,
    Errors,
    Read,
    Spec,
    _bool,
    _holds,
    _id,
    _instant,
    _instant_range,
    _int,
    _key,
    _max_length,
    _micros,
    _no_control,
    _not_blank,
    _object,
    _positive,
    _str,
    _utc,
)

# --------------------------------------------------------------------------- models
# Column conventions: see `common` ("Frame models").


class ProjectFrame(pa.DataFrameModel):
    id: Series[pd.Int64Dtype] = _id()
    name: Series[object] = pa.Field(nullable=False)
    external_id: Series[object] = pa.Field(nullable=True)
    client_id: Series[pd.Int64Dtype] = pa.Field(nullable=True)
    client_ref: Series[pd.Int64Dtype] = pa.Field(nullable=True, alias="client.id")
    client_name: Series[object] = pa.Field(nullable=True, alias="client.name")
    client_code: Series[object] = pa.Field(nullable=True, alias="client.external_id")
    parent_id: Series[pd.Int64Dtype] = pa.Field(nullable=True)
    active: Series[pd.BooleanDtype] = pa.Field(nullable=False)
    modified_time: Series[pd.Int64Dtype] = pa.Field(nullable=False)

    _ids = _positive("id", "client_id", "client.id", "parent_id")
    _names = _max_length(300, "name", "client.name")
    _codes = _max_length(100, "external_id", "client.external_id")
    _text = _no_control("name", "external_id", "client.name", "client.external_id")
    _named = _not_blank("name")
    _modified = _instant_range("modified_time")

    @pa.dataframe_check(error="client.id: must equal client_id")
    def _client_agrees(cls, df: pd.DataFrame) -> pd.Series:
        return _holds(df["client.id"] == df["client_id"])

    @pa.dataframe_check(error="parent_id: must not be the project itself")
    def _not_own_parent(cls, df: pd.DataFrame) -> pd.Series:
        return _holds(df["parent_id"] != df["id"])


def _read_project(rec: dict[str, Any], errs: Errors, zone: ZoneInfo, zone_name: str) -> Read:
    get = rec.get
    rid = _int(get("id", _MISSING), "id", errs)
    modified = _instant(get("modified_time", _MISSING), "modified_time", errs)
    name = _str(get("name", _MISSING), "name", errs)
    code = _key(get("external_id"), "external_id", errs)
    client_id = _int(get("client_id"), "client_id", errs)
    client = _object(get("client"), "client", errs)
    client_ref = _int(client.get("id"), "client.id", errs)
    client_name = _str(client.get("name"), "client.name", errs)
    client_code = _key(client.get("external_id"), "client.external_id", errs)
    parent_id = _int(get("parent_id"), "parent_id", errs)
    active = _bool(get("active", _MISSING), "active", errs)
    frame = {
        "id": rid,
        "name": name,
        "external_id": code,
        "client_id": client_id,
        "client.id": client_ref,
        "client.name": client_name,
        "client.external_id": client_code,
        "parent_id": parent_id,
        "active": active,
        "modified_time": _micros(modified),
    }
    row = {
        "assignar_id": rid,
        "name": name,
        "code": code,
        "client_assignar_id": client_id if client_id is not None else client_ref,
        "client_name": client_name,
        "client_code": client_code,
        "parent_assignar_id": parent_id,
        "active": active,
        "modified_time": _utc(modified),
    }
    return frame, row, []


#: The staging row's columns (see `columns`).
KINDS = {
    "assignar_id": "int",
    "name": "text",
    "code": "text",
    "client_assignar_id": "int",
    "client_name": "text",
    "client_code": "text",
    "parent_assignar_id": "int",
    "active": "bool",
    "modified_time": "instant",
    "content_hash": "content_hash",
}

SPEC = Spec(_read_project, ProjectFrame, kinds=KINDS)

"""Running the readers and pandera models over a chunk (see the package docstring)."""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from operator import itemgetter
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pandera.pandas as pa

import assignar_pipeline.schemas.columns as col
import assignar_pipeline.schemas.orders as orders
import assignar_pipeline.schemas.projects as projects
import assignar_pipeline.schemas.timesheets as timesheets
import assignar_pipeline.schemas.workers as workers
from assignar_pipeline.schemas.common import (
    Entity,
    Errors,
    Quarantined,
    Spec,
    Validated,
    _kind,
    _quarantine,
    _zone,
)

_SPECS: dict[str, Spec] = {
    "projects": projects.SPEC,
    "workers": workers.SPEC,
    "timesheets": timesheets.SPEC,
    "orders": orders.SPEC,
}


def staging_kinds(entity: str) -> dict[str, str]:
    """The staging frame's columns and their kinds (see `columns`) for an entity."""
    return dict(_SPECS[entity].kinds)


# --------------------------------------------------------------------------- running pandera
_BUILT_IN_MESSAGES = {
    "not_nullable": "must not be null",
    "field_uniqueness": "duplicate id in one response",
}


@cache
def _dtypes(model: type[pa.DataFrameModel]) -> dict[str, str]:
    return {name: str(column.dtype) for name, column in model.to_schema().columns.items()}


def _frame(model: type[pa.DataFrameModel], values: list[dict[str, Any]]) -> pd.DataFrame:
    """A frame with the model's columns and dtypes (every values dict has every column)."""
    dtypes = _dtypes(model)
    names = list(dtypes)
    if len(names) == 1:  # itemgetter of one name yields values, not 1-tuples
        columns: Iterable[Sequence[Any]] = [[v[names[0]] for v in values]]
    else:
        # One C call per record, then a C transpose: far cheaper than a lookup per cell.
        columns = (
            zip(*map(itemgetter(*names), values), strict=True) if values else [[]] * len(names)
        )
    return pd.DataFrame(
        {
            name: pd.Series(column, dtype=dtypes[name])
            for name, column in zip(names, columns, strict=True)
        }
    )


def _failures(
    model: type[pa.DataFrameModel], frame: pd.DataFrame
) -> Iterable[tuple[int | None, str, str]]:
    """(frame row or None for every row, field, message) for each failure pandera reports."""
    try:
        model.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
    else:
        return
    seen: set[tuple[int | None, str]] = set()
    for context, column, check, failure, index in zip(
        cases["schema_context"],
        cases["column"],
        cases["check"],
        cases["failure_case"],
        cases["index"],
        strict=True,
    ):
        row = None if index is None or pd.isna(index) else int(index)
        check = str(check)
        if context == "DataFrameSchema" and ":" in check and row is not None:
            # A cross-field check: one failure per column of the failing row; the message
            # already names its field.
            if (row, check) in seen:
                continue
            seen.add((row, check))
            field, _, message = check.partition(": ")
            yield row, field, message
            continue
        if check == "field_uniqueness" and (failure is None or pd.isna(failure)):
            continue
        message = _BUILT_IN_MESSAGES.get(check, check)
        if row is None:
            # A whole-column failure (a dtype): a bug here, never the record's fault; quarantine
            # the chunk rather than stage values that were never checked.
            message = f"could not be checked ({check})"
        yield row, str(column), message


# --------------------------------------------------------------------------- public entry point
def validate(entity: Entity, records: Sequence[Any], *, timezone: str) -> Validated:
    """Split a chunk of API records into staging rows and quarantined records with reasons.

    `timezone` is the connection's IANA zone, used for timesheets whose record names none.
    Raises ValueError for an unknown entity or time zone (caller errors), never for a record.
    """
    spec = _SPECS.get(entity)
    if spec is None:
        raise ValueError(f"unknown entity {entity!r}; expected one of {sorted(_SPECS)}")
    fallback = _zone(timezone)
    if fallback is None:
        raise ValueError(f"unknown time zone {timezone!r}; expected an IANA name")
    with _gc_paused():
        return _validate(spec, records, fallback, timezone)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for one chunk.

    A chunk allocates about ten containers per record, all alive until it returns, so CPython's
    collector would otherwise rescan the caller's heap (the chunk's own records included) several
    times per chunk for nothing: measured at 5,000 timesheets, a median 320 ms became 195 ms.
    Reference counting still frees everything; the collector resumes, as it was, on return.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _schema_failures(
    spec: Spec,
    frame_values: list[dict[str, Any]],
    frame_pos: list[int],
    child_values: list[dict[str, Any]],
    child_pos: list[int],
) -> list[tuple[int, str, str]]:
    """(record position, field, message) for every failure of the chunk's frames."""
    found: list[tuple[int, str, str]] = []
    if frame_values:
        frame = _frame(spec.model, frame_values)
        for i, field, message in _failures(spec.model, frame):
            targets = range(len(frame_pos)) if i is None else (i,)
            found.extend((frame_pos[t], field, message) for t in targets)
    if child_values and spec.child_model is not None:
        frame = _frame(spec.child_model, child_values)
        for i, field, message in _failures(spec.child_model, frame):
            targets = range(len(child_pos)) if i is None else (i,)
            for t in targets:
                label = f"{spec.child_field}[{child_values[t]['_i']}]"
                found.append((child_pos[t], f"{label}.{field}", message))
    return found


def _validate(spec: Spec, records: Sequence[Any], fallback: ZoneInfo, timezone: str) -> Validated:
    """The screen (when the entity has one) takes the clean records in one vectorised pass; the
    per-record reader and pandera take the rest and name their reasons. The rows of both become
    one frame in input order, hashed column-wise."""
    n = len(records)
    clean = np.zeros(n, dtype=bool)
    parts: list[pd.DataFrame] = []
    if spec.screen is not None and n:
        if col.all_of_type(records, dict):
            at = np.arange(n)
            screened = list(records)
        else:
            at = np.flatnonzero(np.array([type(r) is dict for r in records], dtype=bool))
            screened = [records[i] for i in at]
        try:
            ok, frame = spec.screen(screened, timezone)
        except Exception:  # a screen bug costs speed, never a record: the reader decides
            ok, frame = np.zeros(len(at), dtype=bool), None
        if frame is not None and ok.any():
            clean[at[ok]] = True
            parts.append(frame[ok].set_axis(at[ok]))
    rest = np.flatnonzero(~clean)
    rows, row_at, quarantined = _validate_records(
        spec, [records[i] for i in rest], fallback, timezone
    )
    if rows:
        parts.append(col.rows_frame(spec.kinds, rows).set_axis(rest[row_at]))
    if not parts:
        frame = col.empty_frame(spec.kinds)
    elif len(parts) == 1:
        frame = parts[0]
    else:
        frame = pd.concat(parts).sort_index()
    frame = frame.reset_index(drop=True)
    frame["content_hash"] = col.content_hashes(spec.kinds, frame)
    return Validated(frame=frame, quarantined=quarantined, kinds=spec.kinds)


def _validate_records(
    spec: Spec, records: Sequence[Any], fallback: ZoneInfo, timezone: str
) -> tuple[list[dict[str, Any]], list[int], list[Quarantined]]:
    """(valid rows without content_hash, their positions, quarantined) by the per-record reader
    and the pandera models."""
    n = len(records)
    reasons: list[Errors] = [[] for _ in range(n)]
    read_fields: list[set[str]] = [set() for _ in range(n)]  # fields the pre-pass reported
    rows: list[dict[str, Any] | None] = [None] * n
    frame_values: list[dict[str, Any]] = []
    frame_pos: list[int] = []
    child_values: list[dict[str, Any]] = []
    child_pos: list[int] = []

    # 1. Pre-pass: read every field into a typed value or a reason.
    for pos, rec in enumerate(records):
        errs = reasons[pos]
        if not isinstance(rec, dict):
            errs.append(("record", f"must be a JSON object, not {_kind(rec)}"))
            continue
        try:
            values, row, children = spec.reader(rec, errs, fallback, timezone)
        except Exception as exc:  # a reader bug must cost one record, never the chunk
            errs.append(("record", f"could not be read ({type(exc).__name__})"))
            continue
        if errs:
            read_fields[pos].update(field for field, _ in errs)
        rows[pos] = row
        frame_values.append(values)
        frame_pos.append(pos)
        for child in children:
            child_values.append(child)
            child_pos.append(pos)

    # 2. pandera, on the record frame and on the nested lists' frame. A field the pre-pass
    # already reported is not reported again (its null would only add "must not be null").
    try:
        found = _schema_failures(spec, frame_values, frame_pos, child_values, child_pos)
    except Exception as exc:  # a bug here must not crash the run nor stage unchecked values
        found = [
            (pos, "record", f"could not be validated ({type(exc).__name__})") for pos in frame_pos
        ]
    for pos, field, message in found:
        if field not in read_fields[pos] and (field, message) not in reasons[pos]:
            reasons[pos].append((field, message))

    # 3. Rows for the valid records, quarantine for the others, both in input order.
    valid_rows: list[dict[str, Any]] = []
    valid_at: list[int] = []
    quarantined: list[Quarantined] = []
    for pos, rec in enumerate(records):
        row = rows[pos]
        if reasons[pos] or row is None:
            quarantined.append(_quarantine(rec, reasons[pos]))
            continue
        if spec.finish is not None:
            spec.finish(row)
        valid_rows.append(row)
        valid_at.append(pos)
    return valid_rows, valid_at, quarantined

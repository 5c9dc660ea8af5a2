"""Query-string semantics of the Assignar list endpoints: paging, sort, fields and filters.

`parse_query` turns the parameters into a `Query` (raising `QueryError` with the API's 400 message);
`execute` returns the slots of the requested page, using the table's indexes where they help.
"""

from __future__ import annotations

import heapq
import operator
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from operator import itemgetter
from typing import Any

from .resources import ResourceSpec
from .store import Table
from .timeutil import canonical_date, canonical_datetime

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
RESERVED = frozenset({"page", "page_size", "sort", "fields"})

COMPARISON = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}
COLUMN_OPS = {
    "col": operator.eq,
    "ne_col": operator.ne,
    "gt_col": operator.gt,
    "lt_col": operator.lt,
    "gte_col": operator.ge,
    "lte_col": operator.le,
}
TEXT_OPS = ("substring", "starts_with", "ends_with")
OPERATORS = frozenset(
    {"eq", "is", "not", "ne", "in", "not_in", "between", "not_between", *COMPARISON, *COLUMN_OPS}
    | set(TEXT_OPS)
)
TEXT_KINDS = ("str", "date", "datetime")
# The ordered kinds all compare correctly as Python values: dates and instants are stored in one
# canonical string form, so string order is time order.
INDEX_FAST_PATH_LIMIT = 20_000
# An index range read in id order is merged from its runs of equal values (each already in id
# order) when it has at most this many distinct values: a 7-day window of dates has 7.
MAX_MERGED_RUNS = 64


class QueryError(ValueError):
    """A bad query; the message is the API's '[400] …' text."""


@dataclass(frozen=True)
class Filter:
    field: str
    op: str
    value: Any = None  # parsed value (eq/is/not/ne/comparisons/text ops)
    values: tuple[Any, ...] = ()  # in / not_in / between / not_between
    other: str | None = None  # *_col: the field compared against


@dataclass
class Query:
    filters: list[Filter] = field(default_factory=list)
    sort: list[tuple[str, bool]] = field(default_factory=list)  # (field, descending)
    fields: list[str] | None = None
    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE
    page_given: bool = False

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size


# --------------------------------------------------------------------------- parsing
def _parse_int(text: str, name: str) -> int:
    t = text.strip()
    if not t.lstrip("-").isdigit():
        raise QueryError(f"[400] Invalid value for {name}: {text}")
    return int(t)


def parse_value(spec: ResourceSpec, name: str, text: str) -> Any:
    """A query-string value as the field's own type; 'null' means null for every field."""
    if text == "null":
        return None
    kind = spec.fields[name]
    try:
        if kind == "int":
            return _parse_int(text, name)
        if kind == "num":
            return float(text)
        if kind == "bool":
            low = text.strip().lower()
            if low in ("true", "1"):
                return True
            if low in ("false", "0"):
                return False
            raise ValueError(text)
        if kind == "date":
            return canonical_date(text)
        if kind == "datetime":
            return canonical_datetime(text)
    except ValueError:
        raise QueryError(f"[400] Invalid value for {name}: {text}") from None
    return text


def _check_field(spec: ResourceSpec, name: str, usage: str) -> None:
    if name not in spec.fields:
        raise QueryError(f"[400] Unknown field - {name}")
    if usage != "fields" and spec.fields[name] in ("obj", "arr"):
        raise QueryError(f"[400] Cannot {usage} by field - {name}")


def parse_query(
    spec: ResourceSpec,
    params: Iterable[tuple[str, str]],
    *,
    default_page_size: int = DEFAULT_PAGE_SIZE,
    max_page_size: int = MAX_PAGE_SIZE,
) -> Query:
    q = Query(page_size=default_page_size)
    for key, raw in params:
        if key == "page":
            q.page = _parse_int(raw, "page")
            q.page_given = True
            if q.page < 1:
                raise QueryError("[400] page must be 1 or greater")
        elif key == "page_size":
            q.page_size = _parse_int(raw, "page_size")
            if not 1 <= q.page_size <= max_page_size:
                raise QueryError(f"[400] page_size must be between 1 and {max_page_size}")
        elif key == "sort":
            q.sort = []
            for part in (p.strip() for p in raw.split(",")):
                if not part:
                    continue
                desc = part.startswith("-")
                name = part.lstrip("-+")
                _check_field(spec, name, "sort")
                q.sort.append((name, desc))
        elif key == "fields":
            names = [p.strip() for p in raw.split(",") if p.strip()]
            for name in names:
                _check_field(spec, name, "fields")
            q.fields = list(dict.fromkeys(names)) or None
        else:
            q.filters.append(_parse_filter(spec, key, raw))
    return q


def _parse_filter(spec: ResourceSpec, key: str, raw: str) -> Filter:
    name, sep, op = key.partition("__")
    if not sep:
        op = "eq"
    if name not in spec.fields:
        raise QueryError(f"[400] Unknown field - {name}")
    if op not in OPERATORS:
        raise QueryError(f"[400] Unknown operator - {op}")
    _check_field(spec, name, "filter")
    kind = spec.fields[name]
    if op in COLUMN_OPS:
        other = raw.strip()
        _check_field(spec, other, "filter")
        other_kind = spec.fields[other]
        if other_kind != kind and {kind, other_kind} != {"int", "num"}:
            raise QueryError(f"[400] Cannot compare {name} with {other}")
        return Filter(name, op, other=other)
    if op in TEXT_OPS:
        if kind not in TEXT_KINDS:
            raise QueryError(f"[400] Operator {op} is not supported for field - {name}")
        return Filter(name, op, value=raw)
    if op in ("in", "not_in"):
        values = tuple(parse_value(spec, name, v) for v in raw.split(","))
        return Filter(name, op, values=values)
    if op in ("between", "not_between"):
        parts = raw.split(",")
        if len(parts) != 2:
            raise QueryError(f"[400] {op} needs two comma-separated values for {name}")
        lo, hi = (parse_value(spec, name, p) for p in parts)
        if lo is None or hi is None:
            raise QueryError(f"[400] Invalid value for {name}: {raw}")
        return Filter(name, op, values=(lo, hi))
    value = parse_value(spec, name, raw)
    if value is None and op in COMPARISON:
        raise QueryError(f"[400] Invalid value for {name}: {raw}")
    return Filter(name, op, value=value)


# --------------------------------------------------------------------------- predicates
Predicate = Callable[[int], bool]


def _safe(test: Callable[[Any], bool]) -> Callable[[Any], bool]:
    """Comparisons with a value of another type (a malformed row) are simply false."""

    def run(v: Any) -> bool:
        try:
            return test(v)
        except TypeError:
            return False

    return run


def compile_filter(table: Table, f: Filter) -> Predicate:
    """A slot predicate with SQL null semantics: null never matches except via is/not/eq null."""
    col = table.column(f.field)
    op, x = f.op, f.value
    test: Callable[[Any], bool]
    if op in ("eq", "is"):
        test = (lambda v: v is None) if x is None else (lambda v: v is not None and v == x)
    elif op == "not":  # IS NOT: rows whose value is null do match `x__not=value`
        test = (lambda v: v is not None) if x is None else (lambda v: v != x)
    elif op == "ne":  # SQL `<>`: a null value never matches
        test = (lambda v: v is not None) if x is None else (lambda v: v is not None and v != x)
    elif op in COMPARISON:
        cmp = COMPARISON[op]
        test = _safe(lambda v: v is not None and cmp(v, x))
    elif op == "in":
        wanted = set(f.values)
        has_null = None in wanted
        test = lambda v: (v is None and has_null) or (v is not None and v in wanted)  # noqa: E731
    elif op == "not_in":
        unwanted = set(f.values)
        test = lambda v: v is not None and v not in unwanted  # noqa: E731
    elif op in ("between", "not_between"):
        lo, hi = f.values
        if op == "between":
            test = _safe(lambda v: v is not None and lo <= v <= hi)
        else:
            test = _safe(lambda v: v is not None and (v < lo or v > hi))
    elif op in TEXT_OPS:
        meth = {"substring": str.__contains__, "starts_with": str.startswith}.get(op, str.endswith)
        test = lambda v: isinstance(v, str) and meth(v, x)  # noqa: E731
    else:  # *_col
        assert f.other is not None
        other = table.column(f.other)
        cmp = COLUMN_OPS[op]

        def col_test(slot: int) -> bool:
            a, b = col[slot], other[slot]
            if a is None or b is None:
                return False
            try:
                return bool(cmp(a, b))
            except TypeError:
                return False

        return col_test
    return lambda slot: test(col[slot])


# --------------------------------------------------------------------------- planning
@dataclass
class _Source:
    size: int
    slots: Callable[[bool], Iterable[int]]  # reverse flag -> slots in the source's own order
    order: str | None  # "id", "idx:<field>" or None (unordered)
    span: range | None = None  # idx sources: the positions of the range in the index


def _bounds(filters: list[Filter], name: str) -> tuple[Any, bool, Any, bool, bool]:
    """Tightest (lo, lo_incl, hi, hi_incl) implied by range-like filters on one field."""
    lo: Any = None
    hi: Any = None
    lo_incl = hi_incl = True
    used = False
    for f in filters:
        if f.field != name:
            continue
        vals: list[tuple[str, Any]] = []
        if f.op in ("eq", "is") and f.value is not None:
            vals = [("gte", f.value), ("lte", f.value)]
        elif f.op in COMPARISON:
            vals = [(f.op, f.value)]
        elif f.op == "between":
            vals = [("gte", f.values[0]), ("lte", f.values[1])]
        try:
            for op, v in vals:
                used = True
                if op in ("gt", "gte"):
                    incl = op == "gte"
                    if lo is None or v > lo or (v == lo and not incl):
                        lo, lo_incl = v, incl
                else:
                    incl = op == "lte"
                    if hi is None or v < hi or (v == hi and not incl):
                        hi, hi_incl = v, incl
        except TypeError:
            continue
    return lo, lo_incl, hi, hi_incl, used


def _sources(table: Table, filters: list[Filter]) -> list[_Source]:
    full = _Source(
        len(table), lambda rev: _ordered_ids(table, range(len(table.id_slots)), rev), "id"
    )
    found = [full]
    lo, lo_i, hi, hi_i, used = _bounds(filters, "id")
    if used:
        r = table.id_range(lo, lo_i, hi, hi_i)
        found.append(_Source(len(r), lambda rev, r=r: _ordered_ids(table, r, rev), "id"))
    for name in table.sorted_idx:
        lo, lo_i, hi, hi_i, used = _bounds(filters, name)
        if used:
            r = table.sorted_range(name, lo, lo_i, hi, hi_i)
            found.append(
                _Source(
                    len(r),
                    lambda rev, r=r, n=name: _ordered_index(table, n, r, rev),
                    f"idx:{name}",
                    r,
                )
            )
    for f in filters:
        if f.field == "id" and (f.op == "in" or (f.op in ("eq", "is") and f.value is not None)):
            wanted = dict.fromkeys(f.values if f.op == "in" else (f.value,))
            slots = [s for s in map(table.order.get, wanted) if s is not None]
            found.append(_Source(len(slots), lambda rev, s=slots: iter(s), None))
        if f.field in table.hash_idx and f.op in ("eq", "is", "in"):
            idx = table.hash_idx[f.field]
            keys = tuple(dict.fromkeys(f.values)) if f.op == "in" else (f.value,)
            buckets = [idx.get(k, {}) for k in keys]
            size = sum(len(b) for b in buckets)
            found.append(_Source(size, lambda rev, b=buckets: _chain(b), None))
    return found


def _chain(buckets: list[dict[int, None]]) -> Iterator[int]:
    for b in buckets:
        yield from list(b)


def _ordered_ids(table: Table, r: range, reverse: bool) -> Iterator[int]:
    slots = table.id_slots
    return (slots[i] for i in (reversed(r) if reverse else r))


def _ordered_index(table: Table, name: str, r: range, reverse: bool) -> Iterator[int]:
    entries = table.sorted_idx[name]
    if not reverse:
        return (entries[i][2] for i in r)
    return _descending_ties_by_id(entries, r)


def _descending_ties_by_id(entries: list[tuple[Any, int, int]], r: range) -> Iterator[int]:
    """Walk an index backwards, but keep equal values in ascending id order (the tie rule)."""
    i = r.stop - 1
    while i >= r.start:
        value = entries[i][0]
        j = i
        while j > r.start and entries[j - 1][0] == value:
            j -= 1
        for k in range(j, i + 1):
            yield entries[k][2]
        i = j - 1


def _fast_order(table: Table, sort: list[tuple[str, bool]]) -> tuple[str, bool] | None:
    """The index order that yields `sort` directly (ties broken by ascending id), if any."""
    if not sort:
        return None
    if len(sort) == 1 and sort[0][0] == "id":
        return "id", sort[0][1]
    first, desc = sort[0]
    rest = sort[1:]
    simple = first in table.sorted_idx and rest in ([], [("id", False)])
    if simple and table.null_count[first] == 0:
        return f"idx:{first}", desc
    return None


def sort_slots(table: Table, slots: list[int], sort: list[tuple[str, bool]]) -> list[int]:
    """Stable multi-key sort; nulls first ascending, last descending; ties by ascending id."""
    if not sort:
        seq = table.seq
        slots.sort(key=seq.__getitem__)
        return slots
    ids = table.ids
    slots.sort(key=ids.__getitem__)
    for name, desc in reversed(sort):
        if name == "id":
            slots.sort(key=ids.__getitem__, reverse=desc)
            continue
        col = table.column(name)
        try:
            slots.sort(key=lambda s, c=col: (c[s] is not None, c[s]), reverse=desc)
        except TypeError:  # mixed types from a malformed row: order them by their text form
            slots.sort(key=lambda s, c=col: (c[s] is not None, str(c[s])), reverse=desc)
    return slots


def _runs(entries: list[tuple[Any, int, int]], span: range) -> list[tuple[int, int]] | None:
    """[start, stop) of each run of equal values within `span`; None past MAX_MERGED_RUNS."""
    runs = []
    i = span.start
    while i < span.stop:
        if len(runs) == MAX_MERGED_RUNS:
            return None
        j = bisect_right(entries, entries[i][0], i, span.stop, key=_value)
        runs.append((i, j))
        i = j
    return runs


def _by_id(
    table: Table, name: str, span: range, filters: list[Filter], desc: bool, need: int
) -> tuple[Iterator[int], list[Filter]] | None:
    """An index range in id order, lazily, cut to the query's id bounds; with the filters that
    still need checking (those the index range and id bounds do not already guarantee). None
    when the range has more than MAX_MERGED_RUNS distinct values.

    Within one value the index is in id order, so the range is a merge of its runs of equal
    values, each cut to the id bounds by bisection: a page reads about page_size entries however
    large the range is. When nothing else needs checking, only the first `need` entries of each
    run can be among the first `need` of the merge: those are sorted by id in C instead.
    """
    entries = table.sorted_idx[name]
    runs = _runs(entries, span)
    if runs is None:
        return None
    implied = _implied(filters, name)
    lo, lo_incl, hi, hi_incl, used = _bounds(filters, "id")
    cut: list[tuple[int, int]] = []
    try:
        for a, b in runs:
            if lo is not None:
                a = (bisect_left if lo_incl else bisect_right)(entries, lo, a, b, key=_id)
            if hi is not None:
                b = (bisect_right if hi_incl else bisect_left)(entries, hi, a, max(a, b), key=_id)
            cut.append((a, max(a, b)))
        if used:
            implied += _implied(filters, "id")
    except TypeError:  # an id bound that is not a number: the predicates decide
        cut = runs
    rest = [f for f in filters if not any(f is g for g in implied)]
    if not rest:
        head: list[tuple[Any, int, int]] = []
        for a, b in cut:
            head += entries[max(a, b - need) : b] if desc else entries[a : min(b, a + need)]
        head.sort(key=_ID, reverse=desc)  # ids are unique: no ties
        return map(_SLOT, head[:need]), rest
    pick = itemgetter(1, 2)
    streams = [
        map(pick, map(entries.__getitem__, reversed(range(a, b)) if desc else range(a, b)))
        for a, b in cut
    ]
    merged = heapq.merge(*streams, reverse=desc)  # (id, slot): ids are unique
    return map(_second, merged), rest


def _implied(filters: list[Filter], name: str) -> list[Filter]:
    """The filters on `name` that `_bounds` turned into the range (every entry in it matches)."""
    return [
        f
        for f in filters
        if f.field == name
        and (
            (f.op in ("eq", "is") and f.value is not None)
            or f.op in COMPARISON
            or f.op == "between"
        )
    ]


_ID = itemgetter(1)  # of an index entry (value, id, slot)
_SLOT = itemgetter(2)


def _value(entry: tuple[Any, int, int]) -> Any:
    return entry[0]


def _id(entry: tuple[Any, int, int]) -> int:
    return entry[1]


def _second(pair: tuple[int, int]) -> int:
    return pair[1]


def execute(
    table: Table, q: Query, *, offset: int | None = None, limit: int | None = None
) -> list[int]:
    """Slots of the requested page (or of [offset, offset+limit) when given)."""
    start = q.offset if offset is None else offset
    count = q.page_size if limit is None else limit
    preds = [compile_filter(table, f) for f in q.filters]

    def keep(slots: Iterable[int]) -> Iterator[int]:
        if not preds:
            return iter(slots)
        return (s for s in slots if all(p(s) for p in preds))

    sources = _sources(table, q.filters)
    best = min(sources, key=lambda s: s.size)
    fast = _fast_order(table, q.sort)
    if not q.sort and best is sources[0]:
        # No filter narrows anything and no sort: walk storage order lazily.
        return list(islice(keep(table.order.values()), start, start + count))
    if fast is not None and fast[0] == "id" and best.span is not None and best.order:
        # Keyset paging through a window (`sort=id`, `id__gt`, a range on an indexed field).
        name = best.order.removeprefix("idx:")
        merged = _by_id(table, name, best.span, q.filters, fast[1], start + count)
        if merged is not None:
            stream, rest = merged
            checks = [compile_filter(table, f) for f in rest]
            if checks:
                stream = (s for s in stream if all(p(s) for p in checks))
            return list(islice(stream, start, start + count))
    ordered_best = fast is not None and best.order == fast[0]
    if fast is not None and (best.size > INDEX_FAST_PATH_LIMIT or ordered_best):
        # Walk an index already in the requested order and stop once the page is full.
        order_name, desc = fast
        ordered = [s for s in sources if s.order == order_name]
        if not ordered:  # sort by an indexed field that no filter restricts: walk the whole index
            name = order_name.removeprefix("idx:")
            whole = range(len(table.sorted_idx[name]))
            ordered = [
                _Source(len(whole), lambda rev: _ordered_index(table, name, whole, rev), None)
            ]
        src = min(ordered, key=lambda s: s.size)
        return list(islice(keep(src.slots(desc)), start, start + count))
    matched = list(keep(best.slots(False)))
    return sort_slots(table, matched, q.sort)[start : start + count]

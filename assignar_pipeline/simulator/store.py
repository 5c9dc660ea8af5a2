"""In-memory table of one resource: rows kept as ready-to-send JSON plus the indexes queries need.

Each record lives in a fixed slot. Its JSON bytes are stored once so that a 1,000-row page is a
join of byte strings. Where each top-level field begins in those bytes is kept too (two bytes per
field and row), so a page with `fields` is cut out of the stored rows by C-level slicing instead of
parsing and re-serialising them; rows so cut are kept per field set (see `Table.project`), so the
next page with the same `fields` is a join again. Top-level scalar values are kept decoded per
column (eagerly for indexed or commonly filtered fields, lazily for the rest) so filters and sorts
never re-parse JSON.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Iterator, Sequence
from itertools import accumulate, chain, repeat
from operator import add, getitem, itemgetter, sub
from typing import Any

import orjson

from .resources import ResourceSpec
from .timeutil import canonical_date, canonical_datetime

Record = dict[str, Any]


def dumps(obj: Any) -> bytes:
    """orjson.dumps, copied into an exact-size object: orjson's own result keeps its growth
    buffer allocated (~8 KB for a 3 KB row), which would almost triple the memory of a big table."""
    return bytes(memoryview(orjson.dumps(obj)))


def normalize(kind: str, value: Any) -> Any:
    """Column value for comparisons: dates and instants in canonical string form, others unchanged.

    Values that do not parse (e.g. a deliberately malformed record inserted by a test) are kept raw.
    """
    if value is None or not isinstance(value, str):
        return value
    try:
        if kind == "datetime":
            return canonical_datetime(value)
        if kind == "date":
            return canonical_date(value)
    except ValueError:
        return value
    return value


#: Field sets whose projected rows a table keeps besides its spec's `ready_fields`: a client trying
#: many evicts the least recently used, so memory stays bounded.
MAX_KEPT_FIELD_SETS = 4
#: Rows projected per step when a ready field set is prepared (bounds the temporary lists).
READY_CHUNK = 10_000

#: Field offsets are unsigned 16-bit: a row longer than this is kept whole only (see `unsplit`).
MAX_SPLIT_ROW = 0xFFFF


class RowEncoder:
    """Serialises records of one resource, noting where each top-level field's `"name":value`
    begins; the bytes are exactly `orjson.dumps(record)`.

    `encode` (generation) collects the offsets of the rows it encoded, in order, in `starts`
    (one array per field) and the row numbers it could not split in `unsplit`.
    """

    def __init__(self, spec: ResourceSpec) -> None:
        self.names = list(spec.fields)
        self.keys = [orjson.dumps(n) + b":" for n in self.names]
        # A field's segment is its key, its value and the comma that follows it.
        self.key_lengths = [len(k) + 1 for k in self.keys]
        self.starts: list[array[int]] = [array("H") for _ in self.names]
        self.unsplit: set[int] = set()
        self.rows = 0

    def split(self, record: Record) -> tuple[bytes, list[int] | None]:
        """(JSON bytes, start of each field's segment), or (bytes, None) when the record's keys
        are not the resource's fields in schema order or the row is too long for the offsets."""
        if list(record) != self.names:
            return dumps(record), None
        values = list(map(orjson.dumps, record.values()))
        blob = b"{%b}" % b",".join(map(add, self.keys, values))
        if len(blob) > MAX_SPLIT_ROW:
            return blob, None
        starts = list(accumulate(map(add, self.key_lengths, map(len, values)), initial=1))
        return blob, starts[:-1]

    def encode(self, record: Record) -> bytes:
        blob, starts = self.split(record)
        if starts is None:
            self.unsplit.add(self.rows)
            starts = [0] * len(self.names)
        for column, start in zip(self.starts, starts, strict=True):
            column.append(start)
        self.rows += 1
        return blob


class Table:
    """Rows of one resource with insertion order, id order and secondary indexes."""

    def __init__(self, spec: ResourceSpec) -> None:
        self.spec = spec
        # id -> slot, in storage order: an edited record is popped and re-added, so it moves to
        # the end, which is what a client that pages without `sort` gets to see.
        self.order: dict[int, int] = {}
        self.blobs: list[bytes | None] = []
        self.seq: list[int] = []  # per slot: position in storage order (grows on every write)
        self._next_seq = 0
        self.ids: list[int] = []  # per slot
        self.id_slots: list[int] = []  # live slots sorted by id
        eager = spec.scalar_fields if spec.eager is None else spec.eager
        self.cols: dict[str, list[Any]] = {f: [] for f in eager if f != "id"}
        self.hash_idx: dict[str, dict[Any, dict[int, None]]] = {f: {} for f in spec.hash_indexes}
        # (value, id, slot) tuples sorted; rows whose value is null are kept out (see null_count).
        self.sorted_idx: dict[str, list[tuple[Any, int, int]]] = {
            f: [] for f in spec.sorted_indexes
        }
        self.null_count: dict[str, int] = {f: 0 for f in spec.sorted_indexes}
        for f in (*spec.hash_indexes, *spec.sorted_indexes):
            self.cols.setdefault(f, [])
        self._time_fields = [f for f, k in spec.fields.items() if k in ("date", "datetime")]
        self.encoder = RowEncoder(spec)
        self.field_pos = {name: i for i, name in enumerate(self.encoder.names)}
        # Per field (schema order), per slot: where its segment starts in the slot's JSON.
        self.starts: list[array[int]] = [array("H") for _ in self.encoder.names]
        self.unsplit: set[int] = set()  # live slots without offsets: projected by decoding
        # Per field set asked for, per slot: the row projected to it ("{...}"), None until a
        # request needs it; every write to a slot sets it back to None (see `_forget_projections`).
        self.projections: dict[tuple[str, ...], list[bytes | None]] = {}

    # ----------------------------------------------------------------- reading
    def __len__(self) -> int:
        return len(self.order)

    def __contains__(self, rid: int) -> bool:
        return rid in self.order

    def slot_of(self, rid: int) -> int | None:
        return self.order.get(rid)

    def blob(self, rid: int) -> bytes | None:
        slot = self.order.get(rid)
        return None if slot is None else self.blobs[slot]

    def get(self, rid: int) -> Record | None:
        b = self.blob(rid)
        return None if b is None else orjson.loads(b)

    def records(self) -> Iterator[Record]:
        """All records in storage order (decoded; for tests and small tables)."""
        for slot in self.order.values():
            yield orjson.loads(self.blobs[slot])  # type: ignore[arg-type]

    def live_ids(self) -> list[int]:
        return [self.ids[s] for s in self.id_slots]

    def max_id(self) -> int:
        return self.ids[self.id_slots[-1]] if self.id_slots else 0

    def column(self, name: str) -> list[Any]:
        """Per-slot values of a top-level scalar field, decoding stored rows the first time."""
        if name == "id":
            return self.ids
        col = self.cols.get(name)
        if col is None:
            self.materialize([name])
            col = self.cols[name]
        return col

    def materialize(self, names: Iterable[str]) -> None:
        """Decode the given fields of every stored row into columns (one JSON parse per row)."""
        missing = [n for n in names if n != "id" and n not in self.cols]
        if not missing:
            return
        new_cols: list[list[Any]] = [[] for _ in missing]
        loads = orjson.loads
        for b in self.blobs:
            if b is None:
                for c in new_cols:
                    c.append(None)
                continue
            rec = loads(b)
            for c, n in zip(new_cols, missing, strict=True):
                c.append(rec.get(n))
        for n, c in zip(missing, new_cols, strict=True):
            self.cols[n] = c

    def project(self, slots: Sequence[int], fields: Sequence[str]) -> bytes:
        """The rows at `slots` with only `fields` (in that order), comma-separated.

        Each field is cut out of the stored JSON of every row at once, by slicing, never by
        parsing: a run of fields that follow each other in the schema is one slice per row. What
        comes before a row's last run (its "head") is cut once per field set and kept; the last
        run is sliced from the stored row on every request. A page is then a few C-level maps
        and one join, and a kept field set costs a fraction of the rows' memory: the pipeline's
        fields end with the long `activity_entries` list, which is not copied to be kept.
        """
        if not slots:
            return b""
        kept = self._kept(tuple(fields))
        runs = self._runs(fields)
        gather = itemgetter(*slots) if len(slots) > 1 else lambda seq: (seq[slots[0]],)
        blobs = gather(self.blobs)
        heads = list(gather(kept))
        if None in heads:
            missing = [k for k, head in enumerate(heads) if head is None]
            cut = self._heads([slots[k] for k in missing], runs[:-1])
            for k, head in zip(missing, cut, strict=True):
                heads[k] = kept[slots[k]] = head
        tails = self._segments(gather, blobs, *runs[-1])
        if self.unsplit and not self.unsplit.isdisjoint(slots):
            # No offsets: the whole projection is the head, made by decoding.
            for k, slot in enumerate(slots):
                if slot in self.unsplit:
                    rec = orjson.loads(blobs[k])
                    heads[k] = kept[slot] = dumps({f: rec.get(f) for f in fields})[:-1]
                    tails[k] = b""
        page = list(chain.from_iterable(zip(heads, tails, repeat(b"},"))))  # type: ignore[arg-type]
        page[-1] = b"}"
        return b"".join(page)

    def _kept(self, key: tuple[str, ...]) -> list[bytes | None]:
        """The kept heads of a field set (made empty the first time it is asked for)."""
        kept = self.projections.get(key)
        if key in self.spec.ready_fields and kept is not None:
            return kept
        kept = self.projections.pop(key, None)
        if kept is None:
            asked = [k for k in self.projections if k not in self.spec.ready_fields]
            if len(asked) >= MAX_KEPT_FIELD_SETS:
                del self.projections[asked[0]]
            kept = [None] * len(self.blobs)
        self.projections[key] = kept  # (re)inserted last: the most recently used
        return kept

    def prepare_ready_fields(self) -> None:
        """Project every live row to each of the spec's ready field sets (after generation), so
        even the first request for them is a join of kept rows."""
        live = list(self.order.values())
        for fields in self.spec.ready_fields:
            kept = self._kept(fields)
            runs = self._runs(fields)[:-1]
            for i in range(0, len(live), READY_CHUNK):
                chunk = live[i : i + READY_CHUNK]
                for slot, head in zip(chunk, self._heads(chunk, runs), strict=True):
                    kept[slot] = head

    def _runs(self, fields: Sequence[str]) -> list[tuple[int, int]]:
        """[first, past last) schema positions of each run of neighbouring fields, in order."""
        runs: list[list[int]] = []
        for name in fields:
            i = self.field_pos[name]
            if runs and runs[-1][1] == i:
                runs[-1][1] = i + 1
            else:
                runs.append([i, i + 1])
        return [(x, y) for x, y in runs]

    def _segments(self, gather: Any, blobs: tuple[bytes, ...], x: int, y: int) -> list[bytes]:
        """Per row, the segment of schema positions [x, y) without its trailing comma."""
        ends = self.starts[y] if y < len(self.starts) else None
        # A segment ends one before the next begins (at its comma, or the closing brace).
        stops = map(sub, map(len, blobs) if ends is None else gather(ends), repeat(1))
        return list(map(getitem, blobs, map(slice, gather(self.starts[x]), stops)))

    def _heads(self, slots: Sequence[int], runs: list[tuple[int, int]]) -> list[bytes]:
        """Per row, "{" and the given runs' segments, each followed by a comma."""
        if not runs:
            return [b"{"] * len(slots)
        gather = itemgetter(*slots) if len(slots) > 1 else lambda seq: (seq[slots[0]],)
        blobs = gather(self.blobs)
        count = len(slots)
        parts: list[Iterable[bytes]] = [repeat(b"{", count)]
        for x, y in runs:
            parts.append(self._segments(gather, blobs, x, y))
            parts.append(repeat(b",", count))
        return list(map(b"".join, zip(*parts, strict=True)))

    # ----------------------------------------------------------------- writing
    def bulk_load(
        self,
        ids: list[int],
        blobs: list[bytes],
        columns: dict[str, list[Any]],
        encoder: RowEncoder,
    ) -> None:
        """Fill an empty table in one go (generation): ids ascending, columns already normalised,
        `blobs` made by `encoder.encode` (which noted the field offsets)."""
        assert not self.order, "bulk_load only fills an empty table"
        assert encoder.rows == len(blobs), "every row must come from the encoder"
        n = len(ids)
        self.ids = list(ids)
        self.blobs = list(blobs)
        self.starts = encoder.starts
        self.unsplit = encoder.unsplit
        self.projections.clear()
        self.seq = list(range(n))
        self._next_seq = n
        self.order = dict(zip(ids, range(n), strict=True))
        if any(ids[i] >= ids[i + 1] for i in range(n - 1)):
            self.id_slots = sorted(range(n), key=ids.__getitem__)
        else:
            self.id_slots = list(range(n))
        for name in list(self.cols):
            if name in columns:
                self.cols[name] = list(columns[name])
            else:
                del self.cols[name]  # decoded later on demand
                self.materialize([name])
        self._rebuild_indexes()

    def _rebuild_indexes(self) -> None:
        for f, idx in self.hash_idx.items():
            idx.clear()
            col = self.cols[f]
            for slot in self.order.values():
                idx.setdefault(col[slot], {})[slot] = None
        for f in self.sorted_idx:
            col = self.cols[f]
            ids = self.ids
            entries = [(col[s], ids[s], s) for s in self.order.values() if col[s] is not None]
            entries.sort()
            self.sorted_idx[f] = entries
            self.null_count[f] = len(self.order) - len(entries)

    def put(self, record: Record) -> None:
        """Insert a record, or replace the stored one with the same id (it moves to the end).

        Top-level dates and date-times are stored in the API's canonical form (a record written
        with '2024-01-15T08:00:00Z' is served as '2024-01-15T08:00:00.000Z'), so decoded column
        values always equal the served JSON values.
        """
        for name in self._time_fields:
            if name in record:
                record[name] = normalize(self.spec.fields[name], record[name])
        rid = record["id"]
        blob, starts = self.encoder.split(record)
        slot = self.order.pop(rid, None)
        if slot is None:
            slot = len(self.blobs)
            self.blobs.append(blob)
            for column in self.starts:
                column.append(0)
            for kept in self.projections.values():
                kept.append(None)
            self.ids.append(rid)
            self.seq.append(self._next_seq)
            for col in self.cols.values():
                col.append(None)
            if not self.id_slots or rid > self.ids[self.id_slots[-1]]:
                self.id_slots.append(slot)
            else:
                pos = bisect_left(self.id_slots, rid, key=self.ids.__getitem__)
                self.id_slots.insert(pos, slot)
        else:
            self._unindex(slot)
            self.blobs[slot] = blob
            self.seq[slot] = self._next_seq
        self._set_starts(slot, starts)
        self._forget_projections(slot)
        self._next_seq += 1
        self.order[rid] = slot
        for name, col in self.cols.items():
            col[slot] = record.get(name)
        self._index(slot)

    def replace_blob(self, rid: int, record: Record) -> None:
        """Re-render a record in place without moving it (embedded data changed, not the record)."""
        slot = self.order[rid]
        self.blobs[slot], starts = self.encoder.split(record)
        self._set_starts(slot, starts)
        self._forget_projections(slot)

    def _forget_projections(self, slot: int) -> None:
        """The slot's row changed: its projections are cut again when next asked for."""
        for kept in self.projections.values():
            kept[slot] = None

    def _set_starts(self, slot: int, starts: list[int] | None) -> None:
        if starts is None:
            self.unsplit.add(slot)
            return
        self.unsplit.discard(slot)
        for column, start in zip(self.starts, starts, strict=True):
            column[slot] = start

    def delete(self, rid: int) -> bool:
        """Hard delete: the record vanishes from lists and by-id lookups."""
        slot = self.order.pop(rid, None)
        if slot is None:
            return False
        self._unindex(slot)
        pos = bisect_left(self.id_slots, rid, key=self.ids.__getitem__)
        del self.id_slots[pos]
        self.blobs[slot] = None
        self.unsplit.discard(slot)
        self._forget_projections(slot)
        for col in self.cols.values():
            col[slot] = None
        return True

    def _index(self, slot: int) -> None:
        rid = self.ids[slot]
        for f, idx in self.hash_idx.items():
            idx.setdefault(self.cols[f][slot], {})[slot] = None
        for f, entries in self.sorted_idx.items():
            v = self.cols[f][slot]
            if v is None:
                self.null_count[f] += 1
            else:
                try:
                    insort(entries, (v, rid, slot))
                except TypeError:  # a value of the wrong type (test-inserted malformed row)
                    self.null_count[f] += 1

    def _unindex(self, slot: int) -> None:
        rid = self.ids[slot]
        for f, idx in self.hash_idx.items():
            bucket = idx.get(self.cols[f][slot])
            if bucket is not None:
                bucket.pop(slot, None)
                if not bucket:
                    del idx[self.cols[f][slot]]
        for f, entries in self.sorted_idx.items():
            v = self.cols[f][slot]
            key = (v, rid, slot)
            try:
                pos = bisect_left(entries, key)
            except TypeError:
                pos = len(entries)
            if pos < len(entries) and entries[pos] == key:
                del entries[pos]
            else:
                self.null_count[f] -= 1

    # ----------------------------------------------------------------- index helpers
    def id_range(self, lo: int | None, lo_incl: bool, hi: int | None, hi_incl: bool) -> range:
        """Positions in id_slots whose ids fall within the bounds."""
        key = self.ids.__getitem__
        start = 0
        end = len(self.id_slots)
        if lo is not None:
            bis = bisect_left if lo_incl else bisect_right
            start = bis(self.id_slots, lo, key=key)
        if hi is not None:
            bis = bisect_right if hi_incl else bisect_left
            end = bis(self.id_slots, hi, key=key)
        return range(start, max(start, end))

    def sorted_range(self, field: str, lo: Any, lo_incl: bool, hi: Any, hi_incl: bool) -> range:
        """Positions in sorted_idx[field] whose values fall within the bounds."""
        entries = self.sorted_idx[field]
        key = _first
        start, end = 0, len(entries)
        if lo is not None:
            bis = bisect_left if lo_incl else bisect_right
            start = bis(entries, lo, key=key)
        if hi is not None:
            bis = bisect_right if hi_incl else bisect_left
            end = bis(entries, hi, key=key)
        return range(start, max(start, end))


def _first(entry: tuple[Any, int, int]) -> Any:
    return entry[0]

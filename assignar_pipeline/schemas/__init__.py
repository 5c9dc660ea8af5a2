"""Validate chunks of Assignar API records and turn each valid record into a staging row.

`validate(entity, records, timezone=...)` never raises for bad records and never drops one: every
record becomes either a row for its staging table (`assignar_pipeline.pay.tables.STAGING`) or a
`Quarantined` entry whose reason names the field(s) and the rule.

How a chunk is checked: a clean path for the bulk, and the detailed path for the rest.

0. The screen (timesheets and orders, in their modules): the chunk's fields are read into
   columns in one pass over the dicts, nested lists (activity entries, order activities) become
   child arrays with a parent index, and types, shapes, ranges and cross-field rules are checked
   with numpy/pandas over the whole chunk. Records it vouches for become rows there and then.
   It is conservative: anything unusual (a value of the wrong type, a date-time shape the API
   does not use, a duplicate id) only sends that record to the detailed path below, which
   decides and names the reasons. Projects and workers (small) always take the detailed path.
1. A pre-pass reads each record into typed values: ids and minutes as ints, dates as ordinals,
   instants as microseconds since the epoch (for the checks) next to the parsed values (for the
   row). Values that cannot be read at all (a string where an id belongs, "not-a-date", a number
   where a string belongs) are reasons already; the frame gets a null there and the schema's own
   complaints about that field are then left out, so each field is reported once.
2. pandera DataFrameModels validate the chunk's frame with `lazy=True`: nullability, ranges,
   lengths, control characters, time zone names, uniqueness of ids, and cross-field rules.
   Nested lists (timesheet activity entries, order activities) get a frame of their own whose
   failures are reported against the parent record. `SchemaErrors.failure_cases` is mapped back to
   row positions, so one bad record never hides another's errors nor blocks the good ones.
3. Valid records of both paths become one frame in input order (`Validated.frame`, see
   `columns`): the staging table's columns except connection_id, fetched_at and voided_at, with
   `content_hash` = sha256 of the row's other values serialised canonically (the bytes orjson
   gives for the row dict with sorted keys, built column-wise). `Validated.rows` gives the same
   rows as dicts, built on first use.

Mapping choices (the simulator in `assignar_pipeline/simulator/` stands in for the API):

- Ids must be JSON integers (not bool, not "123"), positive, and fit a BIGINT; `status_id` and
  `employment_type` fit an INTEGER. A duplicate id within one chunk quarantines every copy with
  "id: duplicate id in one response": either copy may be the stale one, and a later fetch
  releases them.
- Instants must be ISO 8601 with an offset or "Z" (the API documents `*_at`/`*_datetime` as UTC);
  a value without an offset is refused rather than guessed. Stored as aware UTC datetimes. Dates
  of work, orders and instants must lie within 1990-01-01..2100-12-31; a date of birth within
  1900-01-01..2100-12-31.
- Optional key strings (project `external_id`, client `external_id`, worker `employee_id` and
  `email`, order `job_number`/`po_number`, activity `external_id`) become None when empty or blank;
  otherwise they are kept exactly as given (emails are not lower-cased).
- projects: code = `external_id`; client_assignar_id = `client_id` (else the embedded
  `client.id`, which must agree when both are given); client_name/client_code from the embedded
  `client`; parent_assignar_id = `parent_id` (never the project itself).
- workers (`/users`): first_name must not be blank (last_name may be: people with one name).
- timesheets:
  - The time zone is the first activity entry's `start_at_tz`, else the connection's zone.
  - work_date is the local date of `start_datetime` in that zone (pay-domain §4.8–9: a shift
    belongs to the local date of its start, overnight shifts included).
  - The simulator writes `submitted_date` as exactly that date and `start_time`/`end_time` as the
    local wall times of `start_datetime`/`end_datetime`. When a record disagrees, neither side
    wins: either the zone is wrong (e.g. the connection's fallback for a site elsewhere) or the
    instants are (the spec's examples label local times "Z"). Paying on either guess could put a
    shift on the wrong day, so the record is quarantined and names the disagreeing field.
  - Each activity entry's `start_at_naive` must equal `start_at` in `start_at_tz`. An entry with
    `is_naive_datetime` true only has a wall time: that time must exist exactly once in the zone
    (not skipped or repeated by a DST change).
  - total_minutes = `total_time` "HH:MM" (hours may be written past 23 but a shift is at most 24
    hours). The shift itself (end - start) must be positive and at most 24 hours; total_minutes
    and the activity entries' summed `duration` must not exceed it, measured in real time or by
    the local clock, whichever is longer (they differ by the DST change on a DST night).
  - `status` is kept as given (any non-blank text: the API's enum is not published); processed
    = `processed_at` is set.
  - lines = [{"ref": entry id, "cost_code": activity.external_id, "minutes": duration}].
- orders: work_date = `start_date`; `end_date` (optional) must not be before it; description =
  `job_description` (multi-line text allowed); lines = [{"cost_code": external_id, "description":
  name, "quantity": "51.00" or None when the order gives none, "unit": uom_code}]. Quantities are
  JSON numbers (or numeric strings), finite, non-negative, below 10**12, at most 2 decimals.
- Text must not contain control characters (tab and newlines are allowed in descriptions only) or
  lone surrogates, and must fit the column lengths of the staging tables.
- `Quarantined.record` is a JSON-serialisable copy (Decimal and non-finite floats as strings);
  `Quarantined.assignar_id` is `str(record["id"])` cut to the 40 characters of the quarantine
  table's column.
"""

from assignar_pipeline.schemas.columns import rows_frame
from assignar_pipeline.schemas.common import Entity, Quarantined, Validated, content_hash
from assignar_pipeline.schemas.validation import staging_kinds, validate

__all__ = [
    "Entity",
    "Quarantined",
    "Validated",
    "content_hash",
    "rows_frame",
    "staging_kinds",
    "validate",
]

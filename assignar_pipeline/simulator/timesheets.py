"""Timesheets: who works where and when each day (planning) and the expanded API record.

Planning draws a fixed number of random numbers per worker from a per-day generator, so a day's
shifts are the same whenever that day is planned (initial load or a later `advance`), and workers
added later do not disturb the draws of earlier ones.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson

from . import catalog as cat
from .data import FILES_HOST, Project, Worker, World, fragment
from .store import RowEncoder, dumps
from .timeutil import (
    EPOCH_ORDINAL,
    day_str,
    duration_hhmm,
    hhmm,
    is_dst_change_day,
    iso_naive,
    iso_utc,
    local_to_epoch,
)

Record = dict[str, Any]

# Inferred from the Assignar web app's seven statuses; the spec itself only shows the last one.
PENDING_SUBMISSION = "PENDING_SUBMISSION"
SUBMITTED = "SUBMITTED"
APPROVED_STATUSES = (
    "APPROVED",
    "APPROVED_WITH_PAY_RATES",
    "APPROVED_WITH_CHARGE_RATES",
    "APPROVED_WITH_PAY_AND_CHARGE_RATES",
)
ALL_STATUSES = ("STARTED", PENDING_SUBMISSION, SUBMITTED, *APPROVED_STATUSES)
_DRAWS_PER_WORKER = 10


@dataclass(slots=True)
class Shift:
    worker: Worker
    project: Project
    day: int  # local date of the start (ordinal) -> submitted_date
    start_min: int  # local minutes after midnight
    end_min: int  # may pass 1440 (overnight)
    break_min: int
    rolls: tuple[float, float, float, float, float, float]

    @property
    def start_ts(self) -> int:
        return local_to_epoch(self.project.zone, self.day, self.start_min)

    @property
    def end_ts(self) -> int:
        return local_to_epoch(self.project.zone, self.day, self.end_min)


class Embeds:
    """Pre-serialised embedded objects (user, project, task…) shared by many timesheet rows."""

    def __init__(self, records: dict[str, list[Record]]) -> None:
        self.user: dict[int, orjson.Fragment] = {}
        self.user_ref: dict[int, orjson.Fragment] = {}
        self.project: dict[int, orjson.Fragment] = {}
        self.client: dict[int, orjson.Fragment] = {}
        self.order: dict[int, orjson.Fragment] = {}
        self.order_job: dict[int, str] = {}
        self.task: dict[int, orjson.Fragment] = {}
        self.names: dict[int, tuple[str, str]] = {}  # user id -> (username, full name)
        self.raw: dict[tuple[str, int], bytes] = {}  # what each embed currently serialises to
        for u in records["users"]:
            self.set_user(u)
        for p in records["projects"]:
            self.set_project(p)
        for c in records["clients"]:
            self.set_client(c)
        for o in records["orders"]:
            self.set_order(o)
        for t in records["tasks"]:
            self.task[t["id"]] = fragment({"name": t["name"], "external_id": t["external_id"]})
        self.supplier = {
            sid: fragment({"name": n, "external_id": ext}) for sid, n, ext in cat.SUPPLIERS
        }
        self.activity = {
            a[0]: fragment({"id": a[0], "name": a[1], "external_id": a[2], "is_payable": a[4]})
            for a in cat.ACTIVITIES
        }
        self.allowance = {
            a[0]: fragment({"id": a[0], "name": a[1], "active": a[2], "code": a[3]})
            for a in cat.ALLOWANCES
        }

    def _frag(self, kind: str, rid: int, obj: Record) -> orjson.Fragment:
        raw = dumps(obj)
        self.raw[(kind, rid)] = raw
        return orjson.Fragment(raw)

    def same(self, kind: str, rid: int, obj: Record) -> bool:
        """Whether the cached embed already serialises exactly like `obj`."""
        return self.raw.get((kind, rid)) == orjson.dumps(obj)

    def set_user(self, u: Record) -> None:
        self.user[u["id"]] = self._frag("user", u["id"], user_embed(u))
        self.user_ref[u["id"]] = fragment(user_ref(u))
        self.names[u["id"]] = (u["username"], u["full_name"])

    def set_project(self, p: Record) -> None:
        embed = {"name": p["name"], "external_id": p["external_id"]}
        self.project[p["id"]] = self._frag("project", p["id"], embed)

    def set_client(self, c: Record) -> None:
        embed = {"name": c["name"], "external_id": c["external_id"]}
        self.client[c["id"]] = self._frag("client", c["id"], embed)

    def set_order(self, o: Record) -> None:
        self.order[o["id"]] = self._frag("order", o["id"], order_embed(o))
        self.order_job[o["id"]] = o["job_number"]


def user_embed(u: Record) -> Record:
    return {
        "user_id": u["id"],
        "username": u["username"],
        "full_name": u["full_name"],
        "first_name": u["first_name"],
        "last_name": u["last_name"],
        "employee_id": u["employee_id"],
        "employment_type_id": u["employment_type"],
        "email": u["email"],
    }


def user_ref(u: Record) -> Record:
    return {
        "user_id": u["id"],
        "username": u["username"],
        "first_name": u["first_name"],
        "last_name": u["last_name"],
    }


def order_embed(o: Record) -> Record:
    return {"id": o["id"], "job_number": o["job_number"], "job_description": o["job_description"]}


# --------------------------------------------------------------------------- planning
def projects_on(world: World, day: int) -> dict[str, tuple[list[Project], list[Project]]]:
    """Per zone: (day-shift projects, night-shift projects) running on `day`.

    Parents with sub-projects and near-duplicates are left out: crews book to the sub-projects,
    and only the odd mis-booked timesheet lands on a duplicate.
    """
    dups = {p.dup_id for p in world.projects if p.dup_id is not None}
    out: dict[str, tuple[list[Project], list[Project]]] = {}
    for p in world.projects:
        if p.start_day <= day <= p.end_day and not p.has_children and p.id not in dups:
            pair = out.setdefault(p.zone, ([], []))
            pair[1 if p.night else 0].append(p)
    return out


def plan_day(world: World, day: int) -> list[Shift]:
    """All shifts starting on local day `day`, in worker order."""
    rng = random.Random(world.config.seed * 1_000_003 + day)
    r = rng.random
    weekday = date.fromordinal(day).weekday()
    attend = 0.96 if weekday < 5 else (0.35 if weekday == 5 else 0.08)
    by_zone = projects_on(world, day)
    by_id = {p.id: p for p in world.projects}
    forced_all = world.forced
    out: list[Shift] = []
    empty: tuple[list[Project], list[Project]] = ([], [])
    for w in world.workers:
        a, b, c, d, e, f, g, h, i, j = (r() for _ in range(_DRAWS_PER_WORKER))
        if day < w.first_day or (w.last_day is not None and day > w.last_day):
            continue
        forced = forced_all.get((w.index, day)) if forced_all else None
        if forced is None and a >= (attend * 0.88 if w.casual else attend):
            continue
        day_list, night_list = by_zone.get(w.zone, empty)
        night = forced == "night" or (w.night and bool(night_list))
        cands = night_list if night and night_list else day_list
        if not cands:
            continue
        p = cands[(w.rotation + day // 42) % len(cands)]
        if p.dup_id is not None and h < 0.06:
            dup = by_id.get(p.dup_id)
            if dup is not None and dup.start_day <= day <= dup.end_day:
                p = dup
        rolls = (e, f, g, h, i, j)
        if night:
            start = 1320 + (-30, 0, 0, 30)[int(b * 4)]
            span = 510 + (-30, 0, 0, 30, 60)[int(c * 5)]
            if forced == "night":
                start, span = 1320, 480
            out.append(Shift(w, p, day, start, start + span, 30, rolls))
            continue
        start = w.start_min + (-30, -15, 0, 0, 0, 15, 30)[int(b * 7)]
        span = w.span_min + (-60, -30, 0, 0, 0, 30, 60, 120)[int(c * 8)]
        if weekday >= 5:
            span = min(span, 360)
        if forced == "split" or (w.multi_site and d < 0.05):
            # Two timesheets on one day: a morning on one site, an afternoon on another.
            others = [x for x in day_list if x is not p]
            p2 = others[int(d * 997) % len(others)] if others else p
            out.append(Shift(w, p, day, start, start + 240, 0, rolls))
            rolls2 = (1 - e, 1 - f, 1 - g, 1 - h, 1 - i, 1 - j)
            out.append(
                Shift(w, p2, day, start + 300, start + 300 + max(180, span - 330), 0, rolls2)
            )
            continue
        brk = 0 if span <= 300 else (30 if span < 600 else 45)
        out.append(Shift(w, p, day, start, start + span, brk, rolls))
    return out


# --------------------------------------------------------------------------- building
def _approved_variant(roll: float) -> str:
    """Plain approval 40 %, with pay rates 15 %, with charge rates 15 %, with both 30 %."""
    r = (roll * 7.31) % 1.0  # decorrelated from the activity choice that uses the same roll
    return APPROVED_STATUSES[0 if r < 0.4 else 1 if r < 0.55 else 2 if r < 0.7 else 3]


def _next_tuesday_run(end_ts: int) -> int:
    """Weekly processing run: Tuesday 22:00 UTC after the (Mon-Sun) week the shift ended in."""
    day = end_ts // 86400 + EPOCH_ORDINAL
    sunday = day + (6 - date.fromordinal(day).weekday())
    return (sunday + 2 - EPOCH_ORDINAL) * 86400 + 22 * 3600


def activity_entries(
    world: World,
    emb: Embeds,
    uid: int,
    zone: str,
    day: int,
    start_min: int,
    end_min: int,
    break_min: int,
    activity_id: int,
    stamp: str,
) -> list[Record]:
    """The work time as activity entries; an unpaid break shows as the gap between two entries."""
    if break_min and end_min - start_min > 300:
        mid = start_min + ((end_min - start_min - break_min) // 2) // 15 * 15
        if is_dst_change_day(zone, day) or is_dst_change_day(zone, day + 1):
            # Mid-shift on a DST night is about 02:00, a time that is skipped or repeated; the
            # break is taken two hours in instead, so every entry boundary is a real local time.
            mid = start_min + 120
        spans = [(start_min, mid), (mid + break_min, end_min)]
    else:
        spans = [(start_min, end_min)]
    ref = emb.user_ref[uid]
    act = emb.activity[activity_id]
    out = []
    for a, b in spans:
        a_ts = local_to_epoch(zone, day, a)
        b_ts = local_to_epoch(zone, day, b)
        out.append(
            {
                "id": world.new_id("activity_entry"),
                "start_at": iso_utc(a_ts),
                "start_at_tz": zone,
                "end_at": iso_utc(b_ts),
                "end_at_tz": zone,
                "start_at_naive": iso_naive(day, a),
                "end_at_naive": iso_naive(day, b),
                "is_naive_datetime": False,
                "created_at": stamp,
                "modified_at": stamp,
                "duration": (b_ts - a_ts) // 60,
                "activity": act,
                "created_by": ref,
                "modified_by": ref,
                "related_asset_entries": [],
            }
        )
    return out


def build(world: World, emb: Embeds, s: Shift, ts_id: int, now_ts: int) -> Record:
    """The /timesheets-expanded record of a planned shift, with its status as of `now_ts`."""
    w, p = s.worker, s.project
    zone = p.zone
    e_status, e_delay, e_allow, e_misc, e_ms, e_act = s.rolls
    start_ts = local_to_epoch(zone, s.day, s.start_min)
    end_ts = local_to_epoch(zone, s.day, s.end_min)
    worked = (end_ts - start_ts) // 60 - s.break_min  # real elapsed time: DST nights differ
    uid = w.id
    username, full_name = emb.names[uid]
    admin_id, admin_name = world.admins[ts_id % len(world.admins)]

    created = start_ts - 60 * (5 + int(e_delay * 20))
    submit = end_ts + 60 * (3 + int(e_misc * 55))
    approve = submit + 3600 * (16 + int(e_delay * 80))
    if e_status > 0.975:
        approve += 86400 * 10  # a straggler sits in SUBMITTED for a while
    forgot = e_status < 0.015 and now_ts - end_ts < 86400 * 14
    processed_ts = _next_tuesday_run(end_ts)
    completed_at = submitted_by = completed_by = processed_at = processed_by = None
    if forgot or submit > now_ts:
        status = PENDING_SUBMISSION
        modified, modified_by = min(end_ts + 60, now_ts), username
    else:
        completed_at, completed_by, submitted_by = iso_utc(submit), uid, username
        if approve > now_ts:
            status = SUBMITTED
            modified, modified_by = submit, username
        else:
            status = _approved_variant(e_act)
            modified, modified_by = approve, admin_name
            if approve <= processed_ts <= now_ts:
                processed_at, processed_by = iso_utc(processed_ts), admin_id
                modified = processed_ts
    # Sub-second noise as real rows have it, but never past the simulated now.
    modified_iso = iso_utc(modified, int(e_ms * 1000) if modified < now_ts else 0)
    order_id = world.order_map.get((p.id, s.day))
    if order_id is not None and e_misc > 0.85:
        order_id = None  # not every shift on an ordered day is booked against the order
    allowances = []
    if worked >= 600:
        allowances.append((cat.MEAL_ALLOWANCE, 1.0))
    if p.site.suburb in ("Karratha", "Newcastle", "Boulder") or e_allow < 0.08:
        allowances.append((cat.TRAVEL_ALLOWANCE, round(20 + e_allow * 160, 1)))
    if p.index % 5 == 0 and e_allow > 0.6:
        allowances.append((cat.SITE_ALLOWANCE, 1.0))
    stamp = completed_at or iso_utc(min(end_ts + 60, now_ts))
    activity_id = p.activity_ids[int(e_act * 997) % 3] if p.activity_ids else 1
    jitter = (e_ms - 0.5) * 0.002
    has_out = e_misc < 0.75
    return {
        "id": ts_id,
        "client_id": p.client_id,
        "user_id": uid,
        "project_id": p.id,
        "task_id": w.task_id,
        "location": p.address,
        "order_id": order_id,
        "supplier_id": w.supplier_id,
        "job_number": emb.order_job[order_id] if order_id is not None else None,
        "start_time": hhmm(s.start_min),
        "start_datetime": iso_utc(start_ts),
        "end_time": hhmm(s.end_min),
        "end_datetime": iso_utc(end_ts),
        "total_time": duration_hhmm(worked),
        "comments": cat.COMMENTS[int(e_misc * 1000) % len(cat.COMMENTS)],
        "office_use": None,
        "submitted_date": day_str(s.day),
        "date_of_creation": iso_utc(created),
        "created_by_id": uid,
        "modified_time": modified_iso,
        "modified_by": modified_by,
        "submitted_by": submitted_by,
        "latitude": round(p.lat + jitter, 6),
        "longitude": round(p.lng - jitter, 6),
        "latitude2": round(p.lat - jitter, 6) if has_out else None,
        "longitude2": round(p.lng + jitter, 6) if has_out else None,
        "signature_name": full_name if completed_at and e_misc < 0.7 else None,
        "signature_url": None,
        "client_signature_name": None,
        "client_signature_url": None,
        "document_url": {
            "url": f"{FILES_HOST}/timesheets/{ts_id}.pdf",
            "expiry": (modified + 7 * 86400) * 1000,
        }
        if modified > now_ts - 30 * 86400
        else None,
        "completed_at": completed_at,
        "completed_by_id": completed_by,
        "processed_by_id": processed_by,
        "processed_at": processed_at,
        "deleted_time": None,
        "integration_id": None,
        "status": status,
        "client": emb.client[p.client_id],
        "project": emb.project[p.id],
        "task": emb.task[w.task_id],
        "user": emb.user[uid],
        "supplier": emb.supplier[w.supplier_id] if w.supplier_id is not None else None,
        "order": emb.order[order_id] if order_id is not None else None,
        "digitaldocket": None,
        "activity_entries": activity_entries(
            world, emb, uid, zone, s.day, s.start_min, s.end_min, s.break_min, activity_id, stamp
        ),
        "asset_entries": [],
        "leave_request_entries": [],
        "docket": None,
        "allowances": [
            {
                "id": world.new_id("allowance_entry"),
                "timesheet_id": ts_id,
                "allowance_id": aid,
                "quantity": qty,
                "allowance": emb.allowance[aid],
            }
            for aid, qty in allowances
        ],
        "site_diary": None,
    }


def generate(
    world: World, emb: Embeds, eager: tuple[str, ...], encoder: RowEncoder
) -> tuple[list[int], list[bytes], dict[str, list[Any]]]:
    """Every shift in the window that ended by the simulated now: (ids, JSON rows, columns);
    `encoder` serialises the rows and keeps their field offsets."""
    now_ts = world.now_ts
    first = world.first_day
    ids: list[int] = []
    blobs: list[bytes] = []
    names = [f for f in eager if f != "id"]
    cols: dict[str, list[Any]] = {f: [] for f in names}
    appenders = [(f, cols[f].append) for f in names]
    # Interning repeated values keeps ~1.5M-row columns small (one object per distinct value).
    intern: dict[Any, Any] = {}
    for day in range(first, world.today + 2):
        for s in plan_day(world, day):
            if s.end_ts > now_ts:
                continue
            ts_id = world.new_id("timesheet")
            rec = build(world, emb, s, ts_id, now_ts)
            ids.append(ts_id)
            blobs.append(encoder.encode(rec))
            for f, app in appenders:
                v = rec[f]
                if f != "modified_time":
                    v = intern.setdefault(v, v)
                app(v)
    return ids, blobs, cols


def shifts_ending_between(world: World, after_ts: int, until_ts: int) -> list[Shift]:
    """Planned shifts whose end falls in (after_ts, until_ts], for `advance`."""
    first_day = (after_ts // 86400) + EPOCH_ORDINAL - 2
    last_day = (until_ts // 86400) + EPOCH_ORDINAL + 1
    out = []
    for day in range(max(first_day, world.first_day), last_day + 1):
        for s in plan_day(world, day):
            if after_ts < s.end_ts <= until_ts:
                out.append(s)
    return out


def retime(world: World, emb: Embeds, rec: Record, end_delta: int, stamp: str) -> None:
    """Move a timesheet's end by `end_delta` minutes and recompute everything derived from it."""
    zone = rec["activity_entries"][0]["start_at_tz"] if rec["activity_entries"] else "UTC"
    day = date.fromisoformat(rec["submitted_date"]).toordinal()
    sh, sm = map(int, rec["start_time"].split(":"))
    eh, em = map(int, rec["end_time"].split(":"))
    start_min = sh * 60 + sm
    end_min = eh * 60 + em
    if end_min <= start_min:
        end_min += 1440
    start_ts = local_to_epoch(zone, day, start_min)
    old_end_ts = local_to_epoch(zone, day, end_min)
    hh, mm = map(int, rec["total_time"].split(":"))
    break_min = max(0, (old_end_ts - start_ts) // 60 - (hh * 60 + mm))
    end_min = max(start_min + break_min + 30, end_min + end_delta)
    end_ts = local_to_epoch(zone, day, end_min)
    rec["end_time"] = hhmm(end_min)
    rec["end_datetime"] = iso_utc(end_ts)
    rec["total_time"] = duration_hhmm((end_ts - start_ts) // 60 - break_min)
    activity = rec["activity_entries"][0]["activity"]["id"] if rec["activity_entries"] else 1
    rec["activity_entries"] = activity_entries(
        world, emb, rec["user_id"], zone, day, start_min, end_min, break_min, activity, stamp
    )

"""How the tenant changes while simulated time passes (`advance`), and the `drift` and `churn`
faults' changes while a list is being read.

Shifts that end inside the advanced interval become new timesheets. On every whole UTC hour the
clock crosses, a deterministic batch of office work happens at that instant: submissions,
approvals, edits, hard deletes, weekly processing, staff and project changes, order confirmations.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import date
from typing import TYPE_CHECKING, Any

from . import catalog as cat
from .data import Project, Worker, order_record, project_record, user_record
from .query import Query, execute
from .timesheets import (
    APPROVED_STATUSES,
    PENDING_SUBMISSION,
    SUBMITTED,
    build,
    retime,
    shifts_ending_between,
)
from .timeutil import EPOCH_ORDINAL, day_str, iso_utc, parse_datetime

if TYPE_CHECKING:
    from .state import Simulator

TS = "timesheets-expanded"


def advance(sim: Simulator, minutes: int) -> dict[str, int]:
    world = sim.world
    start = world.now_ts
    end = start + minutes * 60
    counts: Counter[str] = Counter()
    points = list(range((start // 3600 + 1) * 3600, end + 1, 3600))
    if not points or points[-1] != end:
        points.append(end)
    prev = start
    for point in points:
        world.now_ts = point
        _create_timesheets(sim, prev, point, counts)
        if point % 3600 == 0:
            _hourly(sim, point, counts)
        prev = point
    world.now_ts = end
    return dict(sorted(counts.items()))


def _create_timesheets(sim: Simulator, after: int, until: int, counts: Counter[str]) -> None:
    world, table = sim.world, sim.tables[TS]
    for shift in shifts_ending_between(world, after, until):
        if (
            shift.worker.id not in sim.tables["users"]
            or shift.project.id not in sim.tables["projects"]
        ):
            continue  # deleted through the control plane
        rec = build(world, sim.embeds, shift, world.new_id("timesheet"), until)
        table.put(rec)
        counts["timesheets_created"] += 1


def _recent_slots(sim: Simulator, days: int) -> list[int]:
    """Timesheet slots whose submitted_date lies in the last `days` days (via the date index)."""
    table = sim.tables[TS]
    today = sim.world.today
    r = table.sorted_range("submitted_date", day_str(today - days), True, None, True)
    entries = table.sorted_idx["submitted_date"]
    return [entries[i][2] for i in r]


def _hourly(sim: Simulator, t: int, counts: Counter[str]) -> None:
    world = sim.world
    rng = random.Random(world.config.seed * 7919 + t // 3600)
    k = max(1, round(len(world.workers) / 25))
    table = sim.tables[TS]
    status = table.column("status")
    recent = _recent_slots(sim, 14)
    ids = table.ids
    admin_id, admin_name = world.admins[(t // 3600) % len(world.admins)]
    now_iso = iso_utc(t)

    # Workers submit what they forgot to submit at clock-off.
    for slot in [s for s in recent if status[s] == PENDING_SUBMISSION]:
        rec = table.get(ids[slot])
        if rec is None or rng.random() < 0.3:
            continue
        end_ts = _end_ts(rec)
        if end_ts > t - 3600:
            continue
        username = rec["user"]["username"] if rec.get("user") else None
        rec.update(
            status=SUBMITTED,
            completed_at=now_iso,
            completed_by_id=rec["user_id"],
            submitted_by=username,
            modified_by=username,
        )
        _save(sim, TS, rec)
        counts["timesheets_submitted"] += 1

    # Supervisors approve submitted timesheets older than a working day.
    submitted = [s for s in recent if status[s] == SUBMITTED]
    rng.shuffle(submitted)
    approved = 0
    for slot in submitted:
        if approved >= 3 * k:
            break
        rec = table.get(ids[slot])
        if (
            rec is None
            or rec["completed_at"] is None
            or rec["completed_at"] > iso_utc(t - 16 * 3600)
        ):
            continue
        rec.update(status=rng.choice(APPROVED_STATUSES), modified_by=admin_name)
        _save(sim, TS, rec)
        approved += 1
    counts["timesheets_approved"] += approved

    # Corrections: a changed clock-off time, sometimes after approval or even after processing.
    candidates = [s for s in recent if status[s] is not None]
    for _ in range(k):
        if not candidates:
            break
        slot = candidates[rng.randrange(len(candidates))]
        rec = table.get(ids[slot])
        if rec is None:
            continue
        retime(world, sim.embeds, rec, rng.choice((-45, -30, -15, 15, 30, 60)), now_iso)
        if rec["status"] in APPROVED_STATUSES and rng.random() < 0.5:
            rec["status"] = SUBMITTED  # approval undone to allow the edit
        rec["modified_by"] = admin_name
        _save(sim, TS, rec)
        counts["timesheets_edited"] += 1

    # Duplicates entered by mistake get hard-deleted.
    if rng.random() < 0.3 * k:
        pool = [s for s in recent if status[s] in (PENDING_SUBMISSION, SUBMITTED)]
        if pool:
            sim.delete(TS, ids[pool[rng.randrange(len(pool))]])
            counts["timesheets_deleted"] += 1

    # Weekly processing run: Tuesday 22:00 UTC marks last week's approved timesheets processed.
    day = t // 86400 + EPOCH_ORDINAL
    if date.fromordinal(day).weekday() == 1 and (t % 86400) == 22 * 3600:
        processed_at = table.column("processed_at")
        cutoff = day_str(day - 2)  # up to and including Sunday
        for slot in _recent_slots(sim, 21):
            if status[slot] in APPROVED_STATUSES and processed_at[slot] is None:
                rec = table.get(ids[slot])
                if rec is None or rec["submitted_date"] > cutoff:
                    continue
                rec.update(processed_at=now_iso, processed_by_id=admin_id, modified_by=admin_name)
                _save(sim, TS, rec)
                counts["timesheets_processed"] += 1

    _people_and_projects(sim, t, rng, k, counts)
    _orders(sim, t, rng, k, counts)


def _save(sim: Simulator, resource: str, rec: dict[str, Any]) -> None:
    """Store an edited record; leaving out the modified field makes `update` stamp the now."""
    mf = sim.table(resource).spec.modified_field
    changes = {k: v for k, v in rec.items() if k != mf}
    sim.update(resource, rec["id"], changes)


def _end_ts(rec: dict[str, Any]) -> int:
    return int(parse_datetime(rec["end_datetime"]).timestamp())


def _people_and_projects(
    sim: Simulator, t: int, rng: random.Random, k: int, counts: Counter[str]
) -> None:
    world = sim.world
    today = t // 86400 + EPOCH_ORDINAL
    zones = sorted({p.zone for p in world.projects})
    if rng.random() < 0.03 * k:
        zone = rng.choice(zones)
        site = next(s for s in cat.SITES if s.zone == zone)
        fn, ln = rng.choice(cat.FIRST_NAMES), rng.choice(cat.LAST_NAMES)
        uid = sim.next_id("users")
        task_id = rng.choice([task[0] for task in cat.TASKS if task[0] not in cat.SUPERVISOR_TASKS])
        w = Worker(
            id=uid,
            index=len(world.workers),
            zone=zone,
            task_id=task_id,
            start_min=420,
            span_min=540,
            night=False,
            multi_site=False,
            casual=True,
            supplier_id=None,
            first_day=today + 1,
            last_day=None,
            rotation=rng.randrange(1000),
        )
        email = f"{fn}.{ln}.{uid}@example.com".replace("'", "").lower()
        rec = user_record(
            world,
            uid,
            fn,
            ln,
            user_type_id=2,
            employee_id=f"E{30000 + uid}",
            email=email,
            employment_type=3,
            task_id=task_id,
            supplier_id=None,
            site=site,
            active=True,
            modified_ts=t,
        )
        world.workers.append(w)
        del rec["modified_time"]  # insert stamps the simulated now
        sim.insert("users", rec)
        counts["users_created"] += 1
    # Staff details change now and then, and at least once a day (09:00 UTC) so every simulated
    # day has a worker change for incremental syncs to pick up.
    if rng.random() < 0.06 * k or t % 86400 == 9 * 3600:
        w = rng.choice(world.workers)
        rec = sim.get("users", w.id)
        if rec is not None:
            choice = rng.randrange(3)
            if choice == 0:
                rec["contact"] = (
                    f"04{rng.randrange(10, 99)} {rng.randrange(100, 999)} {rng.randrange(100, 999)}"
                )
            elif choice == 1 and rec["email"]:
                rec["email"] = rec["username"] = rec["email"].replace("@", ".work@", 1)
            else:
                rec["last_name"] = rec["last_name"] + "-Jones"
                rec["full_name"] = f"{rec['first_name']} {rec['last_name']}"
            rec["modified_by"] = world.admins[0][1]
            _save(sim, "users", rec)
            counts["users_updated"] += 1
    # Projects whose end date has passed get switched to inactive.
    for p in world.projects:
        if p.end_day < today:
            rec = sim.get("projects", p.id)
            if rec is not None and rec["active"]:
                sim.update("projects", p.id, {"active": False})
                counts["projects_updated"] += 1
    if rng.random() < 0.015 * k:
        _new_project(sim, rng, today)
        counts["projects_created"] += 1
    if rng.random() < 0.03 * k:
        p = rng.choice(world.projects)
        rec = sim.get("projects", p.id)
        if rec is not None and not rec["name"].endswith(" (Revised)"):
            p.name = rec["name"] + " (Revised)"
            sim.update("projects", p.id, {"name": p.name})
            counts["projects_updated"] += 1


def _new_project(sim: Simulator, rng: random.Random, today: int) -> None:
    world = sim.world
    template = rng.choice(world.projects)
    pid = sim.next_id("projects")
    kind = rng.choice(cat.PROJECT_KINDS)
    p = Project(
        id=pid,
        index=len(world.projects),
        name=f"{template.site.suburb} {kind} {pid}",
        external_id=f"PRJ-{len(world.projects) + 1:04d}",
        zone=template.zone,
        site=template.site,
        lat=template.lat,
        lng=template.lng,
        address=template.address,
        client_id=template.client_id,
        start_day=today + 1,
        end_day=today + 300,
        night=False,
        parent_id=None,
        activity_ids=template.activity_ids,
    )
    world.projects.append(p)
    clients = {c["id"]: c for c in sim.records("clients")}
    rec = project_record(world, p, clients, [], sim.now_iso(), True)
    sim.insert("projects", rec)


def _orders(sim: Simulator, t: int, rng: random.Random, k: int, counts: Counter[str]) -> None:
    world = sim.world
    table = sim.tables["orders"]
    today = t // 86400 + EPOCH_ORDINAL
    status = table.column("status_id")
    start = table.column("start_date")
    end = table.column("end_date")
    soon, yesterday = day_str(today + 7), day_str(today - 1)
    slots = list(table.order.values())
    confirm = [s for s in slots if status[s] == cat.STATUS_UNCONFIRMED and start[s] <= soon]
    rng.shuffle(confirm)
    for slot in confirm[:k]:
        if rng.random() < 0.5:
            continue
        rec = sim.update("orders", table.ids[slot], {"status_id": cat.STATUS_CONFIRMED})
        _map_order(sim, rec)
        counts["orders_confirmed"] += 1
    for slot in [s for s in slots if status[s] == cat.STATUS_CONFIRMED and end[s] < yesterday][:k]:
        sim.update("orders", table.ids[slot], {"status_id": cat.STATUS_COMPLETED})
        counts["orders_completed"] += 1
    if rng.random() < 0.3 * k:
        live = [
            p
            for p in world.projects
            if p.start_day <= today + 3 <= p.end_day and not p.has_children
        ]
        if live:
            p = rng.choice(live)
            oid = sim.next_id("orders")
            first = today + 3 + rng.randrange(10)
            rec = order_record(
                world,
                oid,
                p,
                start_day=first,
                end_day=first + rng.randrange(5),
                status_id=cat.STATUS_UNCONFIRMED,
                created_ts=t,
                modified_ts=t,
                task_id=rng.choice(cat.TASKS)[0],
                supplier_id=None,
                rng=rng,
            )
            del rec["modified_time"]  # insert stamps the simulated now
            sim.insert("orders", rec)
            counts["orders_created"] += 1


def _map_order(sim: Simulator, rec: dict[str, Any]) -> None:
    first = date.fromisoformat(rec["start_date"]).toordinal()
    last = date.fromisoformat(rec["end_date"]).toordinal()
    for d in range(first, last + 1):
        sim.world.order_map.setdefault((rec["project_id"], d), rec["id"])


# --------------------------------------------------------------------------- drift
def drift(sim: Simulator, resource: str, q: Query) -> None:
    """After a numbered page: delete one record that sorts before it and add a new one, so the
    next numbered page shifts (a row is skipped) while keyset paging stays exact."""
    table = sim.table(resource)
    if q.offset > 0:
        first = execute(table, q, offset=0, limit=1)
        if first:
            sim.delete(resource, table.ids[first[0]])
    if len(table) == 0:
        return
    _copy(sim, resource, table.ids[table.id_slots[len(table.id_slots) // 2]])


def churn(sim: Simulator, resource: str, q: Query, slots: list[int]) -> dict[str, int]:
    """Right after a list page was answered, change the list under the reader: delete the page's
    first record, edit its last, edit the first record after it (not read yet) and insert a copy
    of one of its records under a new id (so it sorts after everything read so far).

    A reader that neither skips nor repeats ends with each record that existed throughout exactly
    once, the edit after the page in its new version, the insert, and the delete still present
    (read before it happened): the next full read catches up with those two."""
    table = sim.table(resource)
    page = [table.ids[slot] for slot in slots]
    after = execute(table, q, offset=q.offset + len(slots), limit=1)
    following = table.ids[after[0]] if after else None
    _copy(sim, resource, page[len(page) // 2])
    sim.update(resource, page[-1], {})
    if following is not None:
        sim.update(resource, following, {})
    if len(page) > 1:
        sim.delete(resource, page[0])
    return {"deleted": int(len(page) > 1), "edited": 1 + (following is not None), "inserted": 1}


def _copy(sim: Simulator, resource: str, source_id: int) -> None:
    """A new record with the content of `source_id`, a fresh id and the simulated now."""
    table = sim.table(resource)
    source = table.get(source_id)
    assert source is not None
    source["id"] = sim.next_id(resource)
    if resource == TS:
        for entry in source.get("activity_entries") or []:
            entry["id"] = sim.world.new_id("activity_entry")
        for entry in source.get("allowances") or []:
            entry["id"] = sim.world.new_id("allowance_entry")
            entry["timesheet_id"] = source["id"]
    mf = table.spec.modified_field
    if mf:
        source[mf] = sim.now_iso()
    table.put(source)

"""Deterministic tenant generator: a seed and a few scale knobs give the same construction company.

`TenantConfig` holds the knobs; `World` is the generated tenant's model (workers, projects, orders
and id counters) from which API records are rendered and on which later mutations act.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import orjson

from . import catalog as cat
from .store import dumps
from .timeutil import EPOCH_ORDINAL, day_str, dst_transition_days, epoch, iso_utc

DEFAULT_NOW = datetime(2025, 11, 14, 7, 0, tzinfo=UTC)
DEFAULT_TIMEZONES = ("Australia/Sydney", "Australia/Perth", "America/Denver")
TENANT_DOMAIN = "example.com"
FILES_HOST = "https://files.assignar.example"

Record = dict[str, Any]


@dataclass(frozen=True)
class TenantConfig:
    """What tenant to generate. Everything derives from these values, never from the wall clock."""

    seed: int = 1
    workers: int = 25
    projects: int = 8
    days: int = 90
    orders: int = 300
    now: datetime = DEFAULT_NOW
    timezones: tuple[str, ...] = DEFAULT_TIMEZONES

    @classmethod
    def scaled(cls, scale: float = 1.0, **overrides: Any) -> TenantConfig:
        """Demo defaults with workers, projects and orders multiplied by `scale` (days unchanged);
        explicit keyword values (not None) win."""
        base = cls()
        values: dict[str, Any] = {
            "workers": max(1, round(base.workers * scale)),
            "projects": max(1, round(base.projects * scale)),
            "orders": max(0, round(base.orders * scale)),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return replace(base, **values)

    @classmethod
    def large(cls, scale: float = 1.0, **overrides: Any) -> TenantConfig:
        """The benchmark's large tenant: 2,000 workers, 300 projects, 3 years of daily
        timesheets (about 1.5 million) and 50,000 orders; `scale` multiplies workers, projects
        and orders (not days), so a smaller tenant keeps the shape of the large one."""
        values: dict[str, Any] = {
            "workers": max(1, round(2_000 * scale)),
            "projects": max(1, round(300 * scale)),
            "days": 1_095,
            "orders": max(0, round(50_000 * scale)),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return replace(cls(), **values)

    @property
    def now_ts(self) -> int:
        return epoch(self.now)


@dataclass(slots=True)
class Worker:
    """A field worker as the shift planner sees them (the API record lives in the users table)."""

    id: int
    index: int
    zone: str
    task_id: int
    start_min: int  # habitual local start, minutes after midnight
    span_min: int  # habitual span including the break
    night: bool
    multi_site: bool
    casual: bool
    supplier_id: int | None
    first_day: int  # first local day with shifts (ordinal)
    last_day: int | None  # last local day with shifts; None = still working
    rotation: int


@dataclass(slots=True)
class Project:
    id: int
    index: int
    name: str
    external_id: str
    zone: str
    site: cat.Site
    lat: float
    lng: float
    address: str
    client_id: int
    start_day: int
    end_day: int  # inclusive; the project is active while end_day >= today
    night: bool
    parent_id: int | None
    dup_id: int | None = None  # a near-duplicate project some timesheets get booked to
    activity_ids: tuple[int, ...] = ()
    has_children: bool = False


@dataclass
class World:
    """The generated tenant: planner inputs plus counters for ids handed out later."""

    config: TenantConfig
    rng: random.Random
    workers: list[Worker] = field(default_factory=list)
    projects: list[Project] = field(default_factory=list)
    admins: list[tuple[int, str]] = field(default_factory=list)  # (user id, username)
    order_map: dict[tuple[int, int], int] = field(default_factory=dict)  # (project, day) -> order
    forced: dict[tuple[int, int], str] = field(default_factory=dict)  # (worker idx, day) -> kind
    next_id: dict[str, int] = field(default_factory=dict)
    now_ts: int = 0

    @property
    def today(self) -> int:
        return (self.now_ts // 86400) + EPOCH_ORDINAL

    @property
    def first_day(self) -> int:
        return self.config.now.date().toordinal() - self.config.days + 1

    def new_id(self, kind: str) -> int:
        value = self.next_id[kind]
        self.next_id[kind] = value + 1
        return value

    def project(self, pid: int) -> Project | None:
        for p in self.projects:
            if p.id == pid:
                return p
        return None

    def worker(self, uid: int) -> Worker | None:
        for w in self.workers:
            if w.id == uid:
                return w
        return None


# Ids start in different ranges per resource so that a client mixing them up is caught by tests.
ID_BASES = {
    "client": 51,
    "project": 201,
    "user": 1001,
    "order": 30001,
    "order_activity": 70001,
    "timesheet": 500001,
    "activity_entry": 9000001,
    "allowance_entry": 4000001,
}


def fragment(obj: Any) -> orjson.Fragment:
    """Pre-serialised JSON embedded verbatim by orjson (embeds repeated on many rows)."""
    return orjson.Fragment(dumps(obj))


def _ms(rng: random.Random) -> int:
    return rng.randrange(1000)


def _weighted(rng: random.Random, items: list[Any], weights: list[float]) -> Any:
    return rng.choices(items, weights)[0]


# --------------------------------------------------------------------------- reference data
def reference_records(config: TenantConfig, admin_id: int) -> dict[str, list[Record]]:
    """Lookups that rarely change: types, statuses, codes, allowances, activities, tasks."""
    setup_ts = epoch(datetime(2022, 3, 1, 0, 0, tzinfo=UTC))
    setup = iso_utc(setup_ts)
    later = iso_utc(setup_ts + 86400 * 200, 417)
    out: dict[str, list[Record]] = {}
    out["employment-types"] = [{"id": i, "name": n} for i, n in cat.EMPLOYMENT_TYPES]
    out["user-types"] = [
        {"id": i, "user_type": t, "label": label, "modified_by": "system", "modified_time": setup}
        for i, t, label in cat.USER_TYPES
    ]
    out["order-statuses"] = [{"id": i, "name": n} for i, n in cat.ORDER_STATUSES]
    out["order-types"] = [{"id": i, "label": label} for i, label in cat.ORDER_TYPES]
    out["charge-codes"] = [
        {
            "id": i,
            "code": code,
            "label": label,
            "modified_by": admin_id,
            "modified_at": later,
            "integration_id": None,
        }
        for i, code, label in cat.CHARGE_CODES
    ]
    out["charge-items"] = [
        {"id": i, "name": n, "rate": rate, "charge_code_id": cc}
        for i, n, rate, cc in cat.CHARGE_ITEMS
    ]
    out["pay-codes"] = [
        {
            "id": i,
            "code": code,
            "label": label,
            "time_code_id": tc,
            "created_at": setup,
            "created_by_id": admin_id,
            "modified_at": later if deleted else setup,
            "modified_by_id": admin_id,
            "deleted_at": later if deleted else None,
            "deleted_by_id": admin_id if deleted else None,
        }
        for i, code, label, tc, deleted in cat.PAY_CODES
    ]
    out["allowances"] = [{"id": i, "name": n, "active": a} for i, n, a, _code in cat.ALLOWANCES]
    out["activities"] = [
        {
            "id": i,
            "name": n,
            "rule": 0,
            "billable": billable,
            "active": active,
            "sortorder": i * 10,
            "type_id": type_id,
            "is_payable": payable,
            "date_added": setup,
            "date_modified": later if not active else setup,
            "modified_by": admin_id,
            "external_id": ext,
            "uom_code": uom,
            "deleted_at": None,
            "deleted_by_id": None,
            "integration_id": None,
            "activity_type": {
                "id": type_id,
                "type": cat.ACTIVITY_TYPES[type_id][0],
                "label": cat.ACTIVITY_TYPES[type_id][1],
            },
        }
        for i, n, ext, billable, payable, type_id, uom, active in cat.ACTIVITIES
    ]
    out["tasks"] = [
        {
            "id": i,
            "name": n,
            "external_id": ext,
            "active": True,
            "modified_by": "system",
            "modified_time": setup,
            "req_machines": machines,
            "pay_level": level,
            "payroll_acc": acc,
            "charge_code_id": cc,
            "supervisor": supv,
            "integration_id": None,
        }
        for i, n, ext, level, acc, cc, machines, supv, _w in cat.TASKS
    ]
    out["pay-rate-groups"] = [pay_rate_group(task, setup) for task in cat.TASKS]
    return out


def pay_rate_group(task: tuple, modified: str) -> Record:
    """The pay-rate group of one task (served at /tasks/{id}/pay-rate-groups). The API leaves the
    shape undocumented; this follows Assignar's help (a group is a list of code, description,
    units and rate, with a priority) and the `TimesheetPayItem` fields (label, rate, units,
    pay_code)."""
    task_id, name, _ext, level = task[:4]
    base = Decimal(cat.PAY_RATE_BY_LEVEL[level])
    codes = {c[0]: c for c in cat.PAY_CODES}
    group_id = cat.PAY_RATE_GROUP_BASE + task_id - 1
    return {
        "id": group_id,
        "task_id": task_id,
        "name": f"{level} {name}",
        "priority": 1,
        "active": True,
        "modified_time": modified,
        "pay_rates": [
            {
                "id": group_id * 10 + n,
                "pay_code": {"id": code_id, "code": codes[code_id][1], "label": codes[code_id][2]},
                "label": codes[code_id][2],
                "units": "hours",
                # A JSON number, as TimesheetPayItem.rate is; cents are exact at these sizes.
                "rate": float((base * Decimal(multiplier)).quantize(Decimal("0.01"))),
            }
            for n, (code_id, multiplier) in enumerate(cat.PAY_RATE_ITEMS, start=1)
        ],
    }


# --------------------------------------------------------------------------- entities
def _clients(world: World, count: int) -> list[Record]:
    rng = world.rng
    out = []
    for i in range(count):
        short, legal = cat.CLIENT_NAMES[i % len(cat.CLIENT_NAMES)]
        if i >= len(cat.CLIENT_NAMES):  # beyond the catalogue: same group, another entity
            suffix = i // len(cat.CLIENT_NAMES) + 1
            short, legal = f"{short} {suffix}", f"{legal.split(' Pty')[0]} ({suffix})"
        cid = world.new_id("client")
        site = cat.SITES[i % len(cat.SITES)]
        aus = site.country == "Australia"
        slug = "".join(ch for ch in short.lower() if ch.isalnum())
        out.append(
            {
                "id": cid,
                "name": short,
                "company_name": legal,
                "abn": f"{rng.randrange(10**10, 10**11)}" if aus else "",
                "email": f"accounts@{slug}.example.com",
                "office_phone": f"(02) {rng.randrange(8000, 9999)} {rng.randrange(1000, 9999)}"
                if aus
                else f"303-555-{rng.randrange(1000, 9999)}",
                "mobile": "",
                "address_1": f"{rng.randrange(1, 400)} {site.street}",
                "address_geo": None,
                "address_2": "",
                "city": site.suburb,
                "postcode": site.postcode,
                "state": site.state,
                "comments": "",
                "external_id": f"CLI-{i + 1:03d}",
                "active": True,
                "modified_by": world.admins[0][1],
                "modified_time": iso_utc(world.now_ts - 86400 * rng.randrange(200, 900), _ms(rng)),
                "integration_id": None,
            }
        )
    return out


def _plan_projects(world: World, clients: list[Record]) -> None:
    cfg = world.config
    rng = world.rng
    zones = [z for z in cfg.timezones if any(s.zone == z for s in cat.SITES)]
    if not zones:
        raise ValueError(f"no catalogue sites for time zones {cfg.timezones}")
    sites_by_zone = {z: [s for s in cat.SITES if s.zone == z] for z in zones}
    first, today = world.first_day, world.today
    templates = [t for t in cat.PROJECT_TEMPLATES if _site(t.suburb).zone in zones]
    used_zone_anchor: set[str] = set()
    index_of_template: dict[int, int] = {}
    for n in range(cfg.projects):
        tmpl = templates[n] if n < len(templates) else None
        if tmpl is not None:
            site = _site(tmpl.suburb)
            name = tmpl.name
            night = tmpl.night
        else:
            zone = zones[n % len(zones)]
            site = sites_by_zone[zone][n % len(sites_by_zone[zone])]
            kind = cat.PROJECT_KINDS[(n // len(zones)) % len(cat.PROJECT_KINDS)]
            name = f"{site.suburb} {kind}"
            if n >= len(zones) * len(cat.PROJECT_KINDS):
                name += f" Stage {n // (len(zones) * len(cat.PROJECT_KINDS)) + 1}"
            night = n % 7 == 5
        pid = world.new_id("project")
        if site.zone not in used_zone_anchor:
            # The first project in each zone runs through the whole window so every zone has work.
            used_zone_anchor.add(site.zone)
            start, end = first - 400 - rng.randrange(200), today + 365 + rng.randrange(400)
        elif tmpl is not None and tmpl.ends_early:
            start, end = first - 300, first + cfg.days // 2
        else:
            start = rng.randrange(first - 200, max(first - 199, today - 20))
            end = start + rng.randrange(150, 1100)
        parent_id = None
        if tmpl is not None and tmpl.parent is not None and tmpl.parent in index_of_template:
            parent = world.projects[index_of_template[tmpl.parent]]
            parent_id = parent.id
            parent.has_children = True
            start, end = max(start, parent.start_day), min(max(end, today + 30), parent.end_day)
        lat = round(site.lat + rng.uniform(-0.01, 0.01), 6)
        lng = round(site.lng + rng.uniform(-0.01, 0.01), 6)
        p = Project(
            id=pid,
            index=n,
            name=name,
            external_id=f"PRJ-{n + 1:04d}",
            zone=site.zone,
            site=site,
            lat=lat,
            lng=lng,
            address=f"{rng.randrange(1, 250)} {site.street}, {site.suburb} {site.state} "
            f"{site.postcode}, {site.country}",
            client_id=clients[n % len(clients)]["id"],
            start_day=start,
            end_day=end,
            night=night,
            parent_id=parent_id,
            activity_ids=(*sorted(rng.sample(cat.WORK_ACTIVITIES, 3)), 8, 9),
        )
        if tmpl is not None:
            index_of_template[cat.PROJECT_TEMPLATES.index(tmpl)] = n
            if tmpl.dup_of is not None and tmpl.dup_of in index_of_template:
                orig = world.projects[index_of_template[tmpl.dup_of]]
                orig.dup_id = pid
                p.client_id = orig.client_id
                p.external_id = orig.external_id.replace("PRJ-", "PRJ-0")  # "PRJ-00001"
                p.start_day, p.end_day = first + cfg.days // 3, orig.end_day
        world.projects.append(p)
    # Beyond the fixed templates, every 40th project is a near-duplicate of an earlier one.
    for p in world.projects[len(templates) :]:
        if p.index % 40 == 39:
            orig = world.projects[p.index - 20]
            p.name = orig.name.replace(" ", "  ", 1) if p.index % 80 == 79 else orig.name + " "
            p.client_id, p.zone, p.site = orig.client_id, orig.zone, orig.site
            orig.dup_id = p.id
    if not any(p.night for p in world.projects):
        world.projects[-1].night = True


def _site(suburb: str) -> cat.Site:
    return next(s for s in cat.SITES if s.suburb == suburb)


def project_record(
    world: World,
    p: Project,
    clients: dict[int, Record],
    supervisors: list[Record],
    modified: str,
    active: bool,
) -> Record:
    client = clients[p.client_id]
    parent = world.project(p.parent_id) if p.parent_id else None
    children = [c for c in world.projects if c.parent_id == p.id]
    charge = cat.CHARGE_CODES[p.index % len(cat.CHARGE_CODES)]
    acts = {a[0]: a for a in cat.ACTIVITIES}
    return {
        "id": p.id,
        "client_id": p.client_id,
        "name": p.name,
        "email": f"site.{p.index + 1}@{TENANT_DOMAIN}",
        "address": p.address,
        # The spec's example lists [latitude, longitude]; the simulator follows the example.
        "address_geo": {"type": "Point", "coordinates": [p.lat, p.lng]},
        "suburb": p.site.suburb,
        "state": p.site.state,
        "postcode": p.site.postcode,
        "external_id": p.external_id,
        "integration_id": None,
        "active": active,
        "parent_id": parent.id if parent else None,
        "modified_by": world.admins[0][1],
        "modified_time": modified,
        "deleted_at": None,
        "deleted_by_id": None,
        "root_path": f"/{parent.id}/{p.id}/" if parent else f"/{p.id}/",
        "charge_code_id": charge[0],
        "client": {
            "id": client["id"],
            "name": client["name"],
            "external_id": client["external_id"],
        },
        "parent": {"id": parent.id, "name": parent.name, "external_id": parent.external_id}
        if parent
        else None,
        "sub_projects": [
            {"id": c.id, "name": c.name, "external_id": c.external_id} for c in children
        ],
        "charge_code": {"id": charge[0], "code": charge[1], "label": charge[2]},
        "tags": [],
        "activities": [
            {"id": a, "name": acts[a][1], "external_id": acts[a][2]} for a in p.activity_ids
        ],
        "supervisors": [
            {
                "id": s["id"],
                "first_name": s["first_name"],
                "last_name": s["last_name"],
                "employee_id": s["employee_id"],
            }
            for s in supervisors
        ],
    }


def _projects(world: World, clients: list[Record], users: list[Record]) -> list[Record]:
    rng = world.rng
    by_id = {c["id"]: c for c in clients}
    sup_by_zone: dict[str, list[Record]] = {}
    for w, u in zip(world.workers, users[len(world.admins) :], strict=True):
        if u["user_type_id"] == 3:
            sup_by_zone.setdefault(w.zone, []).append(u)
    out = []
    for p in world.projects:
        active = p.end_day >= world.today
        if active:
            changed = (max(p.start_day, world.first_day - 30) - EPOCH_ORDINAL) * 86400
        else:
            changed = (p.end_day + 1 - EPOCH_ORDINAL) * 86400 + 3600 * 3
        changed = min(changed + rng.randrange(36000), world.now_ts - 3600)
        sups = sup_by_zone.get(p.zone, [])[: 1 + p.index % 2]
        out.append(project_record(world, p, by_id, sups, iso_utc(changed, _ms(rng)), active))
    return out


def user_record(
    world: World,
    uid: int,
    first: str,
    last: str,
    *,
    user_type_id: int,
    employee_id: str,
    email: str,
    employment_type: int,
    task_id: int | None,
    supplier_id: int | None,
    site: cat.Site,
    active: bool,
    modified_ts: int,
    tags: tuple[int, ...] = (),
) -> Record:
    rng = world.rng
    task = next((t for t in cat.TASKS if t[0] == task_id), None)
    supplier = next((s for s in cat.SUPPLIERS if s[0] == supplier_id), None)
    aus = site.country == "Australia"
    year = 1960 + rng.randrange(45)
    dob = date(year, 1 + rng.randrange(12), 1 + rng.randrange(28)).isoformat()
    phone = (
        f"04{rng.randrange(10, 99)} {rng.randrange(100, 999)} {rng.randrange(100, 999)}"
        if aus
        else f"720-555-{rng.randrange(1000, 9999)}"
    )
    return {
        "id": uid,
        "user_type_id": user_type_id,
        "employee_id": employee_id,
        "first_name": first,
        "last_name": last,
        "full_name": f"{first} {last}",
        "dob": dob,
        "address": f"{rng.randrange(1, 120)} {site.street}",
        "address_geo": {
            "type": "Point",
            "coordinates": [
                round(site.lat + rng.uniform(-0.05, 0.05), 6),
                round(site.lng + rng.uniform(-0.05, 0.05), 6),
            ],
        },
        "tasks": [{"task_id": str(task[0]), "name": task[1], "external_id": task[2]}]
        if task
        else [],
        "suppliers": [
            {
                "supplier_id": supplier[0],
                "name": supplier[1],
                "external_id": supplier[2],
                "active": True,
            }
        ]
        if supplier
        else [],
        "tags": [
            {"tag_id": t[0], "name": t[1], "description": t[2], "color": t[3]}
            for t in cat.TAGS
            if t[0] in tags
        ],
        "suburb": site.suburb,
        "state": site.state,
        "postcode": site.postcode,
        "email": email,
        "contact": phone,
        "employment_type": employment_type,
        "emergency_contact": phone[:-3] + f"{rng.randrange(100, 999)}",
        "emergency_contact_name": f"{rng.choice(cat.FIRST_NAMES)} {last}",
        "username": email,
        "active": active,
        "modified_by": world.admins[0][1] if world.admins else "system",
        "modified_time": iso_utc(modified_ts, _ms(rng)),
        "comments": "",
        "user_pic": "",
        "eula": 1,
        "usi": "",
        "integration_id": None,
    }


def _users(world: World) -> list[Record]:
    """Two office admins, then the field workers with the deliberate identity rough edges."""
    cfg, rng = world.config, world.rng
    first, today = world.first_day, world.today
    records: list[Record] = []
    home = _site("Sydney") if "Australia/Sydney" in cfg.timezones else world.projects[0].site
    for first_name, last_name in (("Priya", "Raman"), ("Tom", "Becker")):
        uid = world.new_id("user")
        email = f"{first_name}.{last_name}@{TENANT_DOMAIN}".lower()
        world.admins.append((uid, email))
    for (uid, email), (fn, ln) in zip(
        world.admins, (("Priya", "Raman"), ("Tom", "Becker")), strict=True
    ):
        records.append(
            user_record(
                world,
                uid,
                fn,
                ln,
                user_type_id=1,
                employee_id=f"OFF-{uid}",
                email=email,
                employment_type=1,
                task_id=None,
                supplier_id=None,
                site=home,
                active=True,
                modified_ts=world.now_ts - 86400 * 400,
            )
        )
    # Workers live in zones in proportion to the projects there.
    zone_weights: dict[str, int] = {}
    for p in world.projects:
        zone_weights[p.zone] = zone_weights.get(p.zone, 0) + 1
    zones = list(zone_weights)
    night_zones = {p.zone for p in world.projects if p.night}
    task_ids = [t[0] for t in cat.TASKS]
    task_w = [t[8] for t in cat.TASKS]
    seen_names: set[tuple[str, str]] = set()
    used_emails: set[str] = set()
    n = cfg.workers
    dup_new, dup_old = (3, n - 1) if n >= 6 else (None, None)
    for i in range(n):
        # Spread zones deterministically so small tenants still staff every zone.
        if i < 2 * len(zones):
            zone = zones[i % len(zones)]
        else:
            zone = _weighted(rng, zones, list(zone_weights.values()))
        while True:
            fn, ln = rng.choice(cat.FIRST_NAMES), rng.choice(cat.LAST_NAMES)
            if (fn, ln) not in seen_names or len(seen_names) > 1000:
                break
        seen_names.add((fn, ln))
        task_id = _weighted(rng, task_ids, task_w)
        if i == 0:
            task_id = 9  # every tenant has at least one supervisor
        casual = rng.random() < 0.3
        labour_hire = rng.random() < 0.12
        emp_type = (
            6 if labour_hire else (rng.choice((3, 4)) if casual else rng.choice((1, 1, 1, 2, 5)))
        )
        # The second worker of each night-shift zone is on the night crew; later ones by chance.
        night_roll = rng.random() < 0.15
        night = zone in night_zones and i >= len(zones) and (i < 2 * len(zones) or night_roll)
        hired = first - 30 - rng.randrange(2000)
        if i >= len(zones) * 2 and rng.random() < 0.1:
            hired = rng.randrange(first, today)  # started inside the window
        last = None
        active = True
        if i >= len(zones) * 2 and rng.random() < 0.05:
            last = rng.randrange(first, today)  # left inside the window
            active = False
        employee_id = f"E{10000 + i * 7 + rng.randrange(7)}"
        if i % 12 == 6:
            employee_id = ""  # never given a payroll id in Assignar
        site_choices = [s for s in cat.SITES if s.zone == zone]
        site = site_choices[i % len(site_choices)]
        slug = f"{fn}.{ln}".replace("'", "").lower()
        email = f"{slug}@{TENANT_DOMAIN}"
        if email in used_emails:
            email = f"{slug}{i}@{TENANT_DOMAIN}"
        used_emails.add(email)
        if i % 17 == 9:
            email = email.upper()  # typed in capitals at signup
        w = Worker(
            id=world.new_id("user"),
            index=i,
            zone=zone,
            task_id=task_id,
            start_min=rng.choice((330, 360, 360, 390, 420, 420, 450)),
            span_min=rng.choice((510, 510, 540, 570, 600, 630)),
            night=night,
            multi_site=rng.random() < 0.1 or i == 1,
            casual=casual,
            supplier_id=rng.choice(cat.SUPPLIERS)[0] if labour_hire else None,
            first_day=hired,
            last_day=last,
            rotation=rng.randrange(1000),
        )
        world.workers.append(w)
        records.append(
            user_record(
                world,
                w.id,
                fn,
                ln,
                user_type_id=3 if task_id in cat.SUPERVISOR_TASKS else 2,
                employee_id=employee_id,
                email=email,
                employment_type=emp_type,
                task_id=task_id,
                supplier_id=w.supplier_id,
                site=site,
                active=active,
                modified_ts=_user_modified(world, w, rng),
                tags=(302,) if night else ((301,) if i % 5 == 0 else ()),
            )
        )
    if dup_new is not None and dup_old is not None:
        # The same person twice: an old, deactivated account and the current one. Same name, dob and
        # employee id; the emails differ only in letter case. Work moves accounts mid-window.
        new_rec, old_rec = (
            records[len(world.admins) + dup_new],
            records[len(world.admins) + dup_old],
        )
        new_w, old_w = world.workers[dup_new], world.workers[dup_old]
        switch = first + cfg.days // 2
        for key in (
            "first_name",
            "last_name",
            "full_name",
            "dob",
            "employee_id",
            "address",
            "suburb",
            "state",
            "postcode",
            "tasks",
        ):
            old_rec[key] = new_rec[key]
        if not new_rec["employee_id"]:
            new_rec["employee_id"] = old_rec["employee_id"] = f"E{20000 + dup_new}"
        local, _, domain = new_rec["email"].lower().partition("@")
        new_rec["email"] = new_rec["username"] = f"{local}@{domain}"
        old_rec["email"] = old_rec["username"] = (
            ".".join(part.capitalize() for part in local.split(".")) + "@" + domain
        )
        old_rec["active"] = False
        old_w.zone, old_w.task_id, old_w.night = new_w.zone, new_w.task_id, new_w.night
        old_w.first_day, old_w.last_day = min(old_w.first_day, first - 30), switch - 1
        new_w.first_day, new_w.last_day = switch, None
        new_rec["active"] = True
        old_rec["modified_time"] = iso_utc((switch - EPOCH_ORDINAL) * 86400 + 7200, 0)
    return records


def _user_modified(world: World, w: Worker, rng: random.Random) -> int:
    if w.last_day is not None:
        return (w.last_day + 1 - EPOCH_ORDINAL) * 86400 + 3600 * 2
    when = max(w.first_day - 1, world.first_day - 400)
    return min((when - EPOCH_ORDINAL) * 86400 + rng.randrange(86400), world.now_ts - 600)


def order_record(
    world: World,
    oid: int,
    p: Project,
    *,
    start_day: int,
    end_day: int,
    status_id: int,
    created_ts: int,
    modified_ts: int,
    task_id: int,
    supplier_id: int | None,
    rng: random.Random,
) -> Record:
    task = next(t for t in cat.TASKS if t[0] == task_id)
    acts = {a[0]: a for a in cat.ACTIVITIES}
    chosen = p.activity_ids[: 1 + rng.randrange(2)]
    start_min = 1320 if p.night else rng.choice((360, 390, 420))
    duration = rng.choice((480, 510, 600))
    crew = 1 + rng.randrange(6)
    return {
        "id": oid,
        "active": status_id != cat.STATUS_CANCELLED,
        "job_number": f"JOB-{oid}",
        "po_number": f"PO-{rng.randrange(10000, 99999)}" if rng.random() < 0.8 else "",
        "client_id": p.client_id,
        "order_owner": world.admins[oid % len(world.admins)][0],
        "project_id": p.id,
        "location": p.address,
        "location2": "",
        "job_description": f"{crew} x {task[1]} - {p.name}",
        "start_time": f"{start_min // 60:02d}:{start_min % 60:02d}",
        "shift_duration": f"{duration // 60:02d}:{duration % 60:02d}",
        "start_date": day_str(start_day),
        "end_date": day_str(end_day),
        "comments": "",
        "date_created": iso_utc(created_ts, _ms(rng)),
        "modified_time": iso_utc(modified_ts, _ms(rng)),
        "modified_by": world.admins[oid % len(world.admins)][1],
        "status_id": status_id,
        "type_id": 1 if supplier_id is None else 3,
        "supplier_id": supplier_id,
        "integration_id": None,
        "geolocation": {"type": "Point", "coordinates": [p.lat, p.lng]},
        "geolocation2": None,
        "tags": [],
        "activities": [
            {
                "id": world.new_id("order_activity"),
                "activity_id": a,
                "name": acts[a][1],
                "external_id": acts[a][2],
                "uom_code": acts[a][6] or "HR",
                "quantity": float(crew * duration // 60) if rng.random() < 0.7 else None,
            }
            for a in chosen
        ],
    }


def _orders(world: World) -> list[Record]:
    cfg, rng = world.config, world.rng
    today, first = world.today, world.first_day
    span = cfg.days + 21  # orders run from the window start until three weeks ahead
    task_ids = [t[0] for t in cat.TASKS]
    planned: list[tuple[int, Project, int]] = []
    for _ in range(cfg.orders):
        start = first + rng.randrange(span)
        active = [
            p for p in world.projects if p.start_day <= start <= p.end_day and not p.has_children
        ]
        if not active:
            active = [p for p in world.projects if not p.has_children]
        p = active[rng.randrange(len(active))]
        planned.append((start, p, rng.randrange(1, 11)))
    planned.sort(key=lambda t: t[0])  # ids grow with creation time
    out = []
    for start, p, length in planned:
        end = start + length - 1
        roll = rng.random()
        if end < today - 3:
            status = (
                cat.STATUS_COMPLETED
                if roll < 0.8
                else cat.STATUS_CANCELLED
                if roll < 0.88
                else cat.STATUS_CONFIRMED
            )
        elif start <= today + 7:
            status = (
                cat.STATUS_CONFIRMED
                if roll < 0.75
                else cat.STATUS_UNCONFIRMED
                if roll < 0.95
                else cat.STATUS_CANCELLED
            )
        else:
            status = (
                cat.STATUS_UNCONFIRMED
                if roll < 0.65
                else cat.STATUS_CONFIRMED
                if roll < 0.95
                else cat.STATUS_CANCELLED
            )
        created = (start - EPOCH_ORDINAL - 2 - rng.randrange(12)) * 86400 + rng.randrange(86400)
        created = min(created, world.now_ts - 3600 * (1 + rng.randrange(48)))
        if status == cat.STATUS_COMPLETED:
            modified = (end + 1 - EPOCH_ORDINAL) * 86400 + rng.randrange(86400)
        elif status == cat.STATUS_UNCONFIRMED:
            modified = created
        else:
            modified = created + rng.randrange(3600, 86400 * 2)
        modified = min(modified, world.now_ts - 60)
        oid = world.new_id("order")
        supplier = rng.choice(cat.SUPPLIERS)[0] if rng.random() < 0.35 else None
        rec = order_record(
            world,
            oid,
            p,
            start_day=start,
            end_day=end,
            status_id=status,
            created_ts=created,
            modified_ts=max(created, modified),
            task_id=rng.choice(task_ids),
            supplier_id=supplier,
            rng=rng,
        )
        out.append(rec)
        if status in cat.CONFIRMED_STATUSES:
            for d in range(start, end + 1):
                world.order_map.setdefault((p.id, d), oid)
    return out


def generate_world(config: TenantConfig) -> tuple[World, dict[str, list[Record]]]:
    """Everything except timesheets: the world model and the records of the small resources."""
    world = World(config=config, rng=random.Random(config.seed), now_ts=config.now_ts)
    world.next_id = dict(ID_BASES)
    n_clients = max(2, config.projects // 3 + 1)
    # Admin ids are needed by clients and projects, so users come first in id order.
    world.admins = []
    client_placeholder: list[Record] = [{"id": ID_BASES["client"] + i} for i in range(n_clients)]
    _plan_projects(world, client_placeholder)
    users = _users(world)
    clients = _clients(world, n_clients)
    projects = _projects(world, clients, users)
    orders = _orders(world)
    records = reference_records(config, world.admins[0][0])
    records.update({"clients": clients, "projects": projects, "users": users, "orders": orders})
    _force_rough_edges(world)
    return world, records


def _force_rough_edges(world: World) -> None:
    """Pin the shifts tests rely on: a split day and a night shift over each DST change."""
    first, today = world.first_day, world.today
    day_workers = [w for w in world.workers if not w.night and w.last_day is None]
    if day_workers:
        w = day_workers[min(1, len(day_workers) - 1)]
        d = today - 2
        while date.fromordinal(d).weekday() >= 5:
            d -= 1
        if d >= max(first, w.first_day):
            world.forced[(w.index, d)] = "split"
    for zone in sorted({p.zone for p in world.projects}):
        crew = [w for w in world.workers if w.zone == zone and w.last_day is None]
        if not crew:
            continue
        w = next((x for x in crew if x.night), crew[0])
        for t in dst_transition_days(zone, first + 1, today - 1):
            if t - 1 >= w.first_day:
                world.forced[(w.index, t - 1)] = "night"

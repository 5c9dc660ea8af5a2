"""The generated tenant: determinism, size, internal consistency and the deliberate rough edges."""

from __future__ import annotations

import re
from collections import Counter
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from assignar_pipeline.simulator import SimulatorServer, TenantConfig

from .conftest import Api

TS = "/timesheets-expanded"
NOW = datetime.fromisoformat("2025-11-14T07:00:00+00:00")
LISTS = [
    "/projects/",
    "/clients/",
    "/users",
    TS,
    "/orders",
    "/activities",
    "/tasks",
    "/allowances",
    "/pay-codes",
    "/charge-codes",
    "/charge-items",
    "/order-statuses",
    "/order-types",
    "/employment-types",
    "/user-types",
]


@pytest.fixture(scope="module")
def tenant(demo_api: Api) -> dict[str, list[dict[str, Any]]]:
    return {p: demo_api.everything(p) for p in LISTS}


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def local(day: str, hhmm: str, tz: str, next_day: bool = False) -> datetime:
    d = date.fromisoformat(day) + timedelta(days=1 if next_day else 0)
    h, m = map(int, hhmm.split(":"))
    return datetime(d.year, d.month, d.day, h, m, tzinfo=ZoneInfo(tz))


def test_same_seed_gives_identical_data(tenant):
    """A second server with the same seed serves byte-for-byte the same records."""
    with SimulatorServer(config=TenantConfig()) as other:
        api = Api(other)
        for path in LISTS:
            assert api.everything(path) == tenant[path], path


def test_other_seed_gives_other_data(tenant):
    """Another seed changes names and timesheets."""
    with SimulatorServer(config=TenantConfig(seed=2)) as other:
        api = Api(other)
        assert api.everything("/users") != tenant["/users"]
        assert api.everything(TS) != tenant[TS]


def test_demo_tenant_size(tenant):
    """Demo: 25 field workers (+2 office admins), 8 projects, 300 orders, 90 days to now."""
    users = tenant["/users"]
    assert sum(u["user_type_id"] in (2, 3) for u in users) == 25
    assert sum(u["user_type_id"] == 1 for u in users) == 2
    assert len(tenant["/projects/"]) == 8
    assert len(tenant["/orders"]) == 300
    days = {t["submitted_date"] for t in tenant[TS]}
    assert min(days) >= (NOW.date() - timedelta(days=89)).isoformat()
    assert max(days) == NOW.date().isoformat()
    assert 1000 < len(tenant[TS]) < 2500
    assert max(utc(t["end_datetime"]) for t in tenant[TS]) <= NOW
    assert max(utc(t["modified_time"]) for t in tenant[TS]) <= NOW


def test_timesheet_times_agree_with_each_other(tenant):
    """Local start/end + zone give start/end_datetime; total_time = worked activity minutes."""
    bad = []
    for t in tenant[TS]:
        entries = t["activity_entries"]
        tz = entries[0]["start_at_tz"]
        overnight = minutes(t["end_time"]) <= minutes(t["start_time"])
        start = local(t["submitted_date"], t["start_time"], tz)
        end = local(t["submitted_date"], t["end_time"], tz, next_day=overnight)
        worked = sum(e["duration"] for e in entries)
        if utc(t["start_datetime"]) != start or utc(t["end_datetime"]) != end:
            bad.append((t["id"], "datetime"))
        if minutes(t["total_time"]) != worked:
            bad.append((t["id"], "total_time"))
        elapsed = (utc(t["end_datetime"]) - utc(t["start_datetime"])).total_seconds() / 60
        if worked > elapsed:  # the gap between elapsed and worked time is the unpaid break
            bad.append((t["id"], "break"))
        for e in entries:
            naive = datetime.fromisoformat(e["start_at_naive"]).replace(tzinfo=ZoneInfo(tz))
            if naive != utc(e["start_at"]) or e["start_at_tz"] != e["end_at_tz"]:
                bad.append((t["id"], "entry"))
    assert not bad, bad[:10]


def test_tenant_spans_three_time_zones(tenant):
    """Projects in Sydney, Perth and Denver show up through the timesheets' *_tz fields."""
    zones = {e["start_at_tz"] for t in tenant[TS] for e in t["activity_entries"]}
    assert zones == {"Australia/Sydney", "Australia/Perth", "America/Denver"}


def test_overnight_and_dst_night_shifts(tenant):
    """Some shifts cross midnight, and on DST nights real elapsed time differs from the clock."""
    overnight = [t for t in tenant[TS] if minutes(t["end_time"]) < minutes(t["start_time"])]
    assert overnight
    dst = {}
    for t in overnight:
        elapsed = (utc(t["end_datetime"]) - utc(t["start_datetime"])).total_seconds() / 60
        wall = minutes(t["end_time"]) + 1440 - minutes(t["start_time"])
        if elapsed != wall:
            dst[t["activity_entries"][0]["start_at_tz"]] = (t["submitted_date"], wall - elapsed)
    # Sydney springs forward on 5 Oct 2025 (an hour short), Denver falls back on 2 Nov (one more).
    assert dst == {"Australia/Sydney": ("2025-10-04", 60), "America/Denver": ("2025-11-01", -60)}


def test_a_worker_has_two_timesheets_on_one_day(tenant):
    """Several timesheets per worker per day exist (split shifts)."""
    per_day = Counter((t["user_id"], t["submitted_date"]) for t in tenant[TS])
    assert max(per_day.values()) >= 2


def test_statuses_cover_the_approval_states(tenant):
    """Pending, submitted, approved and the three approved-with-rates statuses all occur."""
    statuses = Counter(t["status"] for t in tenant[TS])
    assert set(statuses) == {
        "PENDING_SUBMISSION",
        "SUBMITTED",
        "APPROVED",
        "APPROVED_WITH_PAY_RATES",
        "APPROVED_WITH_CHARGE_RATES",
        "APPROVED_WITH_PAY_AND_CHARGE_RATES",
    }
    processed = [t for t in tenant[TS] if t["processed_at"]]
    assert processed and all(t["status"].startswith("APPROVED") for t in processed)
    pending = [t for t in tenant[TS] if t["status"] == "PENDING_SUBMISSION"]
    assert all(t["completed_at"] is None and t["submitted_by"] is None for t in pending)


def test_near_duplicate_project_names(tenant):
    """Two projects differ only by punctuation: 'Westfield Parramatta Stage 2' vs '- Stage 2'."""
    names = [p["name"] for p in tenant["/projects/"]]
    assert "Westfield Parramatta Stage 2" in names
    assert "Westfield Parramatta - Stage 2" in names
    used = {t["project"]["name"] for t in tenant[TS]}
    assert {"Westfield Parramatta Stage 2", "Westfield Parramatta - Stage 2"} <= used


def test_workers_without_employee_id(tenant):
    """Some field workers have no employee id (empty string)."""
    field = [u for u in tenant["/users"] if u["user_type_id"] in (2, 3)]
    assert any(u["employee_id"] == "" for u in field)


def test_same_person_twice_with_email_in_other_case(tenant):
    """One person, two accounts: emails differ only in case, same name/dob/employee id."""
    by_email: dict[str, list[dict[str, Any]]] = {}
    for u in tenant["/users"]:
        by_email.setdefault(u["email"].lower(), []).append(u)
    pairs = [v for v in by_email.values() if len(v) == 2]
    assert len(pairs) == 1
    a, b = pairs[0]
    assert a["email"] != b["email"]
    assert {a["active"], b["active"]} == {True, False}
    same = ("first_name", "last_name", "dob", "employee_id")
    assert all(a[k] == b[k] for k in same)
    assert {t["user_id"] for t in tenant[TS]} >= {a["id"], b["id"]}


def test_references_resolve(tenant):
    """Timesheets, orders, projects and users point at records that exist, and embeds match."""
    users = {u["id"]: u for u in tenant["/users"]}
    projects = {p["id"]: p for p in tenant["/projects/"]}
    orders = {o["id"]: o for o in tenant["/orders"]}
    statuses = {s["id"]: s["name"] for s in tenant["/order-statuses"]}
    tasks = {t["id"] for t in tenant["/tasks"]}
    allowances = {a["id"] for a in tenant["/allowances"]}
    activities = {a["id"] for a in tenant["/activities"]}
    for t in tenant[TS]:
        u, p = users[t["user_id"]], projects[t["project_id"]]
        assert t["user"] == {
            "user_id": u["id"],
            "username": u["username"],
            "full_name": u["full_name"],
            "first_name": u["first_name"],
            "last_name": u["last_name"],
            "employee_id": u["employee_id"],
            "employment_type_id": u["employment_type"],
            "email": u["email"],
        }
        assert t["project"] == {"name": p["name"], "external_id": p["external_id"]}
        assert t["client_id"] == p["client_id"] and t["task_id"] in tasks
        if t["order_id"] is not None:
            o = orders[t["order_id"]]
            assert o["project_id"] == t["project_id"] and t["job_number"] == o["job_number"]
            assert statuses[o["status_id"]] in ("Confirmed", "Completed")
            assert o["start_date"] <= t["submitted_date"] <= o["end_date"]
        assert {a["allowance_id"] for a in t["allowances"]} <= allowances
        assert {e["activity"]["id"] for e in t["activity_entries"]} <= activities
    employment = {e["id"] for e in tenant["/employment-types"]}
    user_types = {e["id"] for e in tenant["/user-types"]}
    assert all(
        u["employment_type"] in employment and u["user_type_id"] in user_types
        for u in users.values()
    )
    clients = {c["id"] for c in tenant["/clients/"]}
    assert all(p["client_id"] in clients for p in projects.values())
    subs = [p for p in projects.values() if p["parent_id"] is not None]
    assert subs and all(
        {"id": s["id"], "name": s["name"], "external_id": s["external_id"]}
        in projects[s["parent_id"]]["sub_projects"]
        for s in subs
    )


def test_orders_confirmed_and_unconfirmed(tenant):
    """Orders use the tenant's order statuses; confirmed and unconfirmed ones both exist."""
    names = {s["id"]: s["name"] for s in tenant["/order-statuses"]}
    used = Counter(names[o["status_id"]] for o in tenant["/orders"])
    assert used["Confirmed"] and used["Unconfirmed"] and used["Completed"]
    types = {t["id"] for t in tenant["/order-types"]}
    for o in tenant["/orders"]:
        assert o["start_date"] <= o["end_date"] and o["type_id"] in types
        assert re.match(r"^\d{2}:\d{2}$", o["start_time"]) and minutes(o["shift_duration"]) > 0


def test_rates_are_exact_decimals(tenant):
    """Charge item rates are decimal strings with two places, e.g. '68.50'."""
    rates = [Decimal(i["rate"]) for i in tenant["/charge-items"]]
    assert all(r > 0 and r == r.quantize(Decimal("0.01")) for r in rates)
    assert Decimal("68.50") in rates

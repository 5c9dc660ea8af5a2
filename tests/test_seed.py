"""The demo Pay team: idempotent, and overlapping the simulator's demo tenant as documented."""

from __future__ import annotations

import difflib
from datetime import date
from decimal import Decimal

import pytest
import sqlalchemy as sa

from assignar_pipeline.pay import tables as t
from assignar_pipeline.pay.seed import (
    ASSIGNAR_ORD_RATE_BY_PAY_LEVEL,
    PERSONAL_NAME,
    TEAM_NAME,
    seed_demo,
)
from assignar_pipeline.simulator import DEFAULT_NOW, Simulator, TenantConfig
from tests.support.pay import table_checksums, table_rows

# Pay's other spelling -> the Assignar user's name (no number, no email on the Pay side).
SPELLED = {
    "Pria Nguyen": "Priya Nguyen",
    "Amelia Rodrigues": "Amelia Rodriguez",
    "Bill Smith": "William Smith",
}


@pytest.fixture(scope="module")
def tenant() -> dict[str, list[dict]]:
    """The simulator's demo tenant, as the seed was written against it."""
    sim = Simulator(TenantConfig())
    return {
        name: sim.records(name)
        for name in ("users", "projects", "clients", "activities", "pay-codes", "tasks")
    }


@pytest.fixture
def seeded(pay_engine) -> int:
    return seed_demo(pay_engine)


def _employees(engine) -> list[sa.Row]:
    with engine.connect() as conn:
        return conn.execute(sa.select(t.employee)).all()


def _name(record) -> str:
    first, last = (
        (record["first_name"], record["last_name"])
        if isinstance(record, dict)
        else (record.first_name, record.last_name)
    )
    return f"{first} {last}"


def _workers(tenant) -> list[dict]:
    return [u for u in tenant["users"] if u["user_type_id"] != 1]  # 1: office admins


def test_second_seed_changes_nothing(pay_engine):
    """Seeding twice returns the same team and leaves every table byte-for-byte equal."""
    first_id = seed_demo(pay_engine)
    before = table_checksums(pay_engine)
    rows = table_rows(pay_engine)
    assert len(rows["employee"]) == 20 and len(rows["pay_rate"]) == 17
    assert seed_demo(pay_engine) == first_id
    assert table_checksums(pay_engine) == before


def test_seed_leaves_later_changes_alone(pay_engine, seeded):
    """A re-seed (every `make run`) never undoes what happened in Pay since the first one."""
    with pay_engine.begin() as conn:
        conn.execute(
            t.team_feature.update()
            .where(t.team_feature.c.team_id == seeded, t.team_feature.c.feature == "job_costing")
            .values(enabled=False)
        )
        conn.execute(
            t.employee.update().where(t.employee.c.first_name == "Pria").values(first_name="Priya")
        )
    changed = table_checksums(pay_engine)
    seed_demo(pay_engine)
    assert table_checksums(pay_engine) == changed


def test_team_personal_account_and_features(pay_engine, seeded):
    """One AU team with integrations and job costing, and a personal account beside it."""
    with pay_engine.connect() as conn:
        teams = {r.name: r for r in conn.execute(sa.select(t.team))}
        features = set(
            conn.execute(
                sa.select(t.team_feature.c.feature).where(
                    t.team_feature.c.team_id == seeded, t.team_feature.c.enabled
                )
            ).scalars()
        )
    team = teams[TEAM_NAME]
    assert team.id == seeded
    assert (team.account_type, team.country, team.currency, team.timezone) == (
        "team",
        "AU",
        "AUD",
        "Australia/Sydney",
    )
    assert teams[PERSONAL_NAME].account_type == "personal"
    assert features == {"integrations", "job_costing"}


def test_only_owner_and_admin_may_manage_integrations(pay_engine, seeded):
    """Permissions are rows on the built-in roles; members have some, but not integrations."""
    with pay_engine.connect() as conn:
        grants = conn.execute(
            sa.select(t.team_role.c.key, t.role_permission.c.permission)
            .join(t.role_permission, t.role_permission.c.role_id == t.team_role.c.id)
            .where(t.team_role.c.team_id.is_(None))
        ).all()
        members = dict(
            conn.execute(
                sa.select(t.pay_user.c.email, t.team_role.c.key)
                .join(t.team_member, t.team_member.c.user_id == t.pay_user.c.id)
                .join(t.team_role, t.team_role.c.id == t.team_member.c.role_id)
                .where(t.team_member.c.team_id == seeded)
            ).all()
        )
    assert {role for role, perm in grants if perm == "integrations.manage"} == {"owner", "admin"}
    assert any(role == "member" for role, _ in grants)
    assert sorted(members.values()) == ["admin", "member", "owner"]


def test_employee_numbers_shared_with_assignar(pay_engine, seeded, tenant):
    """Twelve employees carry the Assignar employee_id; only Noah Patel's email disagrees."""
    by_number = {u["employee_id"]: u for u in _workers(tenant) if u["employee_id"]}
    shared = [e for e in _employees(pay_engine) if e.employee_number in by_number]
    assert len(shared) == 12
    for e in shared:
        user = by_number[e.employee_number]
        assert _name(e) == _name(user)
        assert (e.email.lower() == user["email"].lower()) == (e.employee_number != "E10050")


def test_some_employees_match_by_email_alone(pay_engine, seeded, tenant):
    """Three match only by email: no number, another spelling, the email in other letter case."""
    emails = {u["email"].lower(): u for u in _workers(tenant)}
    email_only = [e for e in _employees(pay_engine) if not e.employee_number and e.email]
    assert len(email_only) == 3
    for e in email_only:
        user = emails[e.email.lower()]
        assert e.email != user["email"]
        assert _name(e) != _name(user)


def test_some_employees_exist_only_under_another_spelling(pay_engine, seeded, tenant):
    """Three have neither number nor email, and a name close to, not equal to, an Assignar one."""
    assignar_names = {_name(u) for u in _workers(tenant)}
    bare = {_name(e) for e in _employees(pay_engine) if not e.employee_number and not e.email}
    assert bare == set(SPELLED)
    for pay_name, assignar_name in SPELLED.items():
        assert pay_name not in assignar_names and assignar_name in assignar_names
        assert difflib.SequenceMatcher(None, pay_name, assignar_name).ratio() > 0.7


def test_some_assignar_workers_are_absent_from_pay(pay_engine, seeded, tenant):
    """The Colorado crew and two new starters have no Pay employee by any key or spelling."""
    employees = _employees(pay_engine)
    numbers = {e.employee_number for e in employees}
    emails = {e.email.lower() for e in employees if e.email}
    spelled = set(SPELLED.values())
    absent = {
        u["id"]
        for u in _workers(tenant)
        if u["employee_id"] not in numbers
        and u["email"].lower() not in emails
        and _name(u) not in spelled
    }
    assert absent == {1005, 1008, 1013, 1016, 1020, 1023}


def test_projects_clients_and_codes_overlap_partly(pay_engine, seeded, tenant):
    """One project shares its code, one is a near-duplicate without one; codes overlap partly."""
    with pay_engine.connect() as conn:
        projects = conn.execute(sa.select(t.project)).all()
        clients = {r.code for r in conn.execute(sa.select(t.client)) if r.code}
        cost_codes = set(conn.execute(sa.select(t.cost_code.c.code)).scalars())
        pay_codes = set(conn.execute(sa.select(t.pay_code.c.code)).scalars())
    external = {p["external_id"]: p for p in tenant["projects"]}
    same_code = [p for p in projects if p.code in external]
    assert [(p.code, p.name) for p in same_code] == [("PRJ-0003", external["PRJ-0003"]["name"])]
    near = next(p for p in projects if p.name == "Metro Nth Tunnel")
    assert near.code is None
    assignar_names = {p["name"] for p in tenant["projects"]}
    assert near.name not in assignar_names and "Metro North Tunnel" in assignar_names
    assert clients & {c["external_id"] for c in tenant["clients"]} == {"CLI-001", "CLI-003"}
    activities = {a["external_id"] for a in tenant["activities"]}
    assert cost_codes & activities == {"ACT-100", "ACT-120", "ACT-130", "ACT-140"} | {
        "ACT-150",
        "ACT-900",
    }
    live_codes = {c["code"] for c in tenant["pay-codes"] if c["deleted_at"] is None}
    assert live_codes - pay_codes == {"TRAVEL"}
    assert {"ORD", "OT15", "OT20"} <= pay_codes


def test_exactly_one_pay_rate_differs_from_assignar(pay_engine, seeded, tenant):
    """Every matched employee's ORD rate equals Assignar's for their task but Jun MacDonald's."""
    day = DEFAULT_NOW.date()
    levels = {str(task["id"]): task["pay_level"] for task in tenant["tasks"]}
    users = _workers(tenant)
    with pay_engine.connect() as conn:
        rates = conn.execute(
            sa.select(t.pay_rate).where(
                t.pay_rate.c.effective_from <= day,
                sa.or_(t.pay_rate.c.effective_to.is_(None), t.pay_rate.c.effective_to > day),
            )
        ).all()
        jun_history = (
            conn.execute(
                sa.select(t.pay_rate.c.rate)
                .join(t.employee, t.employee.c.id == t.pay_rate.c.employee_id)
                .where(t.employee.c.employee_number == "E10012")
                .where(t.pay_rate.c.effective_from < date(2025, 7, 1))
            )
            .scalars()
            .all()
        )
    own = {r.employee_id: r.rate for r in rates if r.employee_id}
    default = next(r.rate for r in rates if r.employee_id is None and r.project_id is None)
    differences = {}
    for e in _employees(pay_engine):
        user = next(
            (
                u
                for u in users
                if (e.employee_number and u["employee_id"] == e.employee_number)
                or (e.email and u["email"].lower() == e.email.lower())
                or SPELLED.get(_name(e)) == _name(u)
            ),
            None,
        )
        if user is None:
            continue
        assignar = ASSIGNAR_ORD_RATE_BY_PAY_LEVEL[levels[user["tasks"][0]["task_id"]]]
        pay = own.get(e.id, default)
        if pay != assignar:
            differences[_name(e)] = (pay, assignar)
    assert differences == {"Jun MacDonald": (Decimal("46.10"), Decimal("44.80"))}
    assert jun_history == [Decimal("44.80")]

"""The demo Pay team: what a real customer's Pay looks like before its first Assignar import.

`seed_demo(engine)` inserts it (idempotently) and returns the team id. The data is hard-coded
against the simulator's demo tenant (`Simulator(TenantConfig())`, seed 1) so that the import meets
the same mess a real customer's would. The deliberate overlaps with that tenant:

Workers (Assignar /users → Pay employee)
  * Same employee number (Pay `employee_number` = Assignar `employee_id`), same name and email:
    E10003 Sione MacDonald, E10012 Jun MacDonald, E10027 William Taylor, E10033 Leo Nguyen,
    E10060 Charlotte Novak, E10081 Mateo Papadopoulos, E10086 Diego Robinson, E10103 Elena Haddad,
    E10117 Priya Garcia, E10134 Ethan Smith, E10151 Sione Ngata.
  * E10027 William Taylor is ONE Pay employee; Assignar has him twice (user 1006, active, and the
    deactivated duplicate 1027 whose email differs only in case). Both map to the one employee.
  * E10050 Noah Patel: the number matches but Pay holds his personal email (noah.patel@example.net);
    the number is the strong key and the differing email must not block or override it.
  * Email only, no employee number in Pay, the name spelt another way, the email in other case:
    "Tom Smith" Thomas.Smith@example.com (Assignar 1009 Thomas Smith, who has no employee_id),
    "Kai Kowalsky" kai.kowalski@example.com (Assignar 1012 Kai Kowalski, E10066, email in capitals),
    "Luke Anderson" Lucas.Anderson@Example.com (Assignar 1021 Lucas Anderson, no employee_id).
  * Another spelling only, no number and no email (name candidates for the worker-mismatch issue):
    "Pria Nguyen" (Assignar 1018 Priya Nguyen, E10106; same dob 1993-06-17),
    "Amelia Rodrigues" (Assignar 1025 Amelia Rodriguez, E10159), "Bill Smith" (Assignar 1026
    William Smith, E10165; two other Smiths make the name alone ambiguous).
  * Absent from Pay (the team pays its Australian crews only, and some starters are not yet set
    up): the Colorado workers 1005 Fatima Rossi, 1008 Mia Sanchez (labour hire), 1013 Priya
    O'Brien, 1020 Nikolai MacDonald; and 1016 Sofia Martinez (E10097), 1023 Leo Ryan (E10144).
    The office admins 1001 Priya Raman and 1002 Tom Becker are Pay users (logins), not employees.
  * Pay only: P0001 Grace Whitfield (payroll officer, never in the field) and E09950 Hamish Doyle
    (terminated before the Assignar history starts).

Projects and clients (Assignar /projects/, /clients/)
  * Same code: Pay "Perth Airport Terminal Upgrade" code PRJ-0003 = Assignar 203 external_id.
  * Near-duplicate name, no code: Pay "Metro Nth Tunnel" (client Multiplex) vs Assignar 205
    "Metro North Tunnel" PRJ-0005. Names differ after normalisation, so it is a candidate only.
  * Not in Pay: every other Assignar project, including the Assignar-side duplicate pair
    201 "Westfield Parramatta Stage 2" / 202 "Westfield Parramatta - Stage 2".
  * Pay only: "Head Office" OH-001 (no client).
  * Clients: Lendlease CLI-001 and "CPB Contractors" CLI-003 share Assignar's codes; Pay's
    "Multiplex Constructions" has no code (Assignar 52 "Multiplex", CLI-002); "Sydney Water" is
    Pay only.

Cost codes (Assignar /activities external_id) and pay codes (Assignar /pay-codes code)
  * In both: ACT-100, ACT-120, ACT-130, ACT-140, ACT-150, ACT-900; Pay only: OH-100. Missing from
    Pay: ACT-110 Excavation, ACT-160 Plant Operation, ACT-910 Rain Delay, ACT-920 Safety
    Induction (and the inactive ACT-930).
  * In both: ORD, OT15, OT20, NIGHT, SAT, SUN, PH. Pay only: MEAL (allowance), AL (annual leave).
    Missing from Pay: TRAVEL (an unmapped code), and OT-OLD, soft-deleted in Assignar.

Pay rates (ORD, AUD per hour; the team default 38.50 covers everyone without an own rate)
  * The simulator sends no pay rates yet (no TimesheetPayItem, no pay-rate groups). The rates
    here are this company's rates per Assignar task pay level (`ASSIGNAR_ORD_RATE_BY_PAY_LEVEL`:
    L1 38.50, L2 41.20, L3 44.80, L4 48.30, L5 50.60, L6 52.80), which is what Assignar should
    say once it sends pay items.
  * The one deliberate difference: Jun MacDonald (E10012, Carpenter, L3) got a rise in Pay from
    1 July 2025 to 46.10 (the row before it, 44.80, is closed on that date); Assignar still says
    44.80.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from assignar_pipeline.pay import tables as t

TEAM_NAME = "Demo Constructions Pty Ltd"
PERSONAL_NAME = "Jordan Lee"

#: Built-in roles (team_id NULL) and their permissions. Only owner and admin manage integrations.
ROLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "owner": (
        "Owner",
        (
            "integrations.manage",
            "job_costing.view",
            "payroll.manage",
            "rates.edit",
            "timesheets.edit",
        ),
    ),
    "admin": (
        "Admin",
        ("integrations.manage", "job_costing.view", "payroll.manage", "timesheets.edit"),
    ),
    "member": ("Member", ("timesheets.edit",)),
}

# (email, full name)
USERS = (
    ("priya.raman@example.com", "Priya Raman"),  # owner; Assignar office admin 1001
    ("tom.becker@example.com", "Tom Becker"),  # admin; Assignar office admin 1002
    ("sione.macdonald@example.com", "Sione MacDonald"),  # member; site supervisor E10003
    ("jordan.lee@example.net", "Jordan Lee"),  # owns a personal account, no team membership
)
# (email, role) on the demo team
MEMBERS = (
    ("priya.raman@example.com", "owner"),
    ("tom.becker@example.com", "admin"),
    ("sione.macdonald@example.com", "member"),
)

# (code, name)
CLIENTS = (
    ("CLI-001", "Lendlease"),
    (None, "Multiplex Constructions"),
    ("CLI-003", "CPB Contractors"),
    (None, "Sydney Water"),
)

# (code, name, client name, status, timezone)
PROJECTS = (
    ("PRJ-0003", "Perth Airport Terminal Upgrade", "CPB Contractors", "active", "Australia/Perth"),
    (None, "Metro Nth Tunnel", "Multiplex Constructions", "active", "Australia/Sydney"),
    ("OH-001", "Head Office", None, "active", "Australia/Sydney"),
)

COST_CODES = (
    ("ACT-100", "Site Preparation"),
    ("ACT-120", "Formwork"),
    ("ACT-130", "Concrete Pour"),
    ("ACT-140", "Steel Fixing"),
    ("ACT-150", "Traffic Management"),
    ("ACT-900", "Travel"),
    ("OH-100", "Office and Administration"),
)

# (code, name, kind, multiplier)
PAY_CODES = (
    ("ORD", "Ordinary Hours", "ordinary", "1"),
    ("OT15", "Overtime x1.5", "overtime", "1.5"),
    ("OT20", "Overtime x2.0", "overtime", "2"),
    ("NIGHT", "Night Shift Loading", "penalty", "1.25"),
    ("SAT", "Saturday Penalty", "penalty", "1.5"),
    ("SUN", "Sunday Penalty", "penalty", "2"),
    ("PH", "Public Holiday", "penalty", "2.5"),
    ("MEAL", "Meal Allowance", "allowance", None),
    ("AL", "Annual Leave", "leave", "1"),
)

# (employee_number, first, last, email, dob, status)
EMPLOYEES: tuple[tuple[str | None, str, str, str | None, str | None, str], ...] = (
    # same number as Assignar
    ("E10003", "Sione", "MacDonald", "sione.macdonald@example.com", "1997-07-21", "active"),
    ("E10012", "Jun", "MacDonald", "jun.macdonald@example.com", "1968-09-25", "active"),
    ("E10027", "William", "Taylor", "william.taylor@example.com", "1970-05-17", "active"),
    ("E10033", "Leo", "Nguyen", "leo.nguyen@example.com", "1974-01-13", "active"),
    ("E10050", "Noah", "Patel", "noah.patel@example.net", "1984-09-12", "active"),
    ("E10060", "Charlotte", "Novak", "charlotte.novak@example.com", "1995-02-11", "active"),
    ("E10081", "Mateo", "Papadopoulos", "mateo.papadopoulos@example.com", "1971-09-07", "active"),
    ("E10086", "Diego", "Robinson", "diego.robinson@example.com", "1965-04-08", "active"),
    ("E10103", "Elena", "Haddad", "elena.haddad@example.com", "1987-09-09", "active"),
    ("E10117", "Priya", "Garcia", "priya.garcia@example.com", "1979-05-23", "active"),
    ("E10134", "Ethan", "Smith", "ethan.smith@example.com", "1997-05-27", "active"),
    ("E10151", "Sione", "Ngata", "sione.ngata@example.com", "1972-08-20", "active"),
    # email only (other spelling, other letter case)
    (None, "Tom", "Smith", "Thomas.Smith@example.com", "1972-06-04", "active"),
    (None, "Kai", "Kowalsky", "kai.kowalski@example.com", None, "active"),
    (None, "Luke", "Anderson", "Lucas.Anderson@Example.com", None, "active"),
    # another spelling only
    (None, "Pria", "Nguyen", None, "1993-06-17", "active"),
    (None, "Amelia", "Rodrigues", None, None, "active"),
    (None, "Bill", "Smith", None, None, "active"),
    # Pay only
    ("P0001", "Grace", "Whitfield", "grace.whitfield@example.com", "1982-03-30", "active"),
    ("E09950", "Hamish", "Doyle", None, "1979-11-02", "terminated"),
)
#: Employees who are also Pay users (logins): employee number -> login email.
EMPLOYEE_LOGINS = {"E10003": "sione.macdonald@example.com"}

#: What Assignar's pay-rate groups say per task `pay_level` (ORD, AUD per hour); see the top.
ASSIGNAR_ORD_RATE_BY_PAY_LEVEL = {
    "L1": Decimal("38.50"),
    "L2": Decimal("41.20"),
    "L3": Decimal("44.80"),
    "L4": Decimal("48.30"),
    "L5": Decimal("50.60"),
    "L6": Decimal("52.80"),
}

RATE_YEAR = date(2025, 7, 1)  # the Australian financial year the rates belong to
# (employee "first last" or None for the team default, rate, effective_from, effective_to)
ORD_RATES: tuple[tuple[str | None, str, date, date | None], ...] = (
    (None, "38.50", RATE_YEAR, None),
    ("Sione MacDonald", "52.80", RATE_YEAR, None),  # L6 Site Supervisor
    ("Jun MacDonald", "44.80", date(2024, 7, 1), RATE_YEAR),  # L3 Carpenter, as Assignar says
    ("Jun MacDonald", "46.10", RATE_YEAR, None),  # the deliberate difference
    ("William Taylor", "48.30", RATE_YEAR, None),  # L4 Leading Hand
    ("Leo Nguyen", "44.80", RATE_YEAR, None),  # L3 Carpenter
    ("Noah Patel", "44.80", RATE_YEAR, None),  # L3 Steel Fixer
    ("Diego Robinson", "44.80", RATE_YEAR, None),  # L3 Carpenter
    ("Elena Haddad", "48.30", RATE_YEAR, None),  # L4 Leading Hand
    ("Priya Garcia", "44.80", RATE_YEAR, None),  # L3 Steel Fixer
    ("Ethan Smith", "48.30", RATE_YEAR, None),  # L4 Electrician
    ("Sione Ngata", "44.80", RATE_YEAR, None),  # L3 Carpenter
    ("Tom Smith", "44.80", RATE_YEAR, None),  # L3 Steel Fixer
    ("Luke Anderson", "48.30", RATE_YEAR, None),  # L4 Electrician
    ("Amelia Rodrigues", "41.20", RATE_YEAR, None),  # L2 Concreter
    ("Bill Smith", "44.80", RATE_YEAR, None),  # L3 Carpenter
    ("Grace Whitfield", "45.00", RATE_YEAR, None),  # office, not an Assignar worker
)


def seed_demo(engine: Engine) -> int:
    """Create the demo team with its data (one transaction) unless it exists; return its id.

    The built-in roles, their permissions and the users are inserted where missing. The team's own
    data is inserted only together with the team: once it exists, Pay is the customer's, and a
    second run (every `make run` does one) changes nothing, not even what was edited since.
    """
    with engine.begin() as conn:
        roles = {
            key: _ensure(conn, t.team_role, {"team_id": None, "key": key}, {"name": name})
            for key, (name, _) in ROLES.items()
        }
        for key, (_, permissions) in ROLES.items():
            for permission in permissions:
                _ensure(
                    conn, t.role_permission, {"role_id": roles[key], "permission": permission}, {}
                )
        users = {
            email: _ensure(conn, t.pay_user, {"email": email}, {"full_name": name})
            for email, name in USERS
        }

        team_id = _find(conn, t.team, {"name": TEAM_NAME, "account_type": "team"})
        if team_id is None:
            team_id = _insert(
                conn,
                t.team,
                name=TEAM_NAME,
                account_type="team",
                country="AU",
                currency="AUD",
                timezone="Australia/Sydney",
            )
            _seed_team(conn, team_id, roles, users)

        # A personal account, which may not connect; its owner is in no team.
        if _find(conn, t.team, {"name": PERSONAL_NAME, "account_type": "personal"}) is None:
            personal = _insert(
                conn,
                t.team,
                name=PERSONAL_NAME,
                account_type="personal",
                country="AU",
                currency="AUD",
                timezone="Australia/Brisbane",
            )
            _insert(conn, t.team_feature, team_id=personal, feature="integrations", enabled=True)
            _insert(
                conn,
                t.team_member,
                team_id=personal,
                user_id=users["jordan.lee@example.net"],
                role_id=roles["owner"],
                status="active",
            )
    return team_id


def _seed_team(
    conn: Connection, team_id: int, roles: Mapping[str, int], users: Mapping[str, int]
) -> None:
    for feature in ("integrations", "job_costing"):
        _insert(conn, t.team_feature, team_id=team_id, feature=feature, enabled=True)
    for email, role in MEMBERS:
        _insert(
            conn,
            t.team_member,
            team_id=team_id,
            user_id=users[email],
            role_id=roles[role],
            status="active",
        )
    clients = {
        name: _insert(conn, t.client, team_id=team_id, code=code, name=name)
        for code, name in CLIENTS
    }
    for code, name, client_name, status, timezone in PROJECTS:
        _insert(
            conn,
            t.project,
            team_id=team_id,
            name=name,
            code=code,
            client_id=clients[client_name] if client_name else None,
            status=status,
            timezone=timezone,
            origin="manual",
        )
    for code, name in COST_CODES:
        _insert(conn, t.cost_code, team_id=team_id, code=code, name=name)
    pay_codes = {
        code: _insert(
            conn,
            t.pay_code,
            team_id=team_id,
            code=code,
            name=name,
            kind=kind,
            multiplier=None if m is None else Decimal(m),
        )
        for code, name, kind, m in PAY_CODES
    }
    employees = {
        f"{first} {last}": _insert(
            conn,
            t.employee,
            team_id=team_id,
            employee_number=number,
            first_name=first,
            last_name=last,
            email=email,
            dob=date.fromisoformat(dob) if dob else None,
            status=status,
            origin="manual",
            user_id=users[EMPLOYEE_LOGINS[number]] if number in EMPLOYEE_LOGINS else None,
        )
        for number, first, last, email, dob, status in EMPLOYEES
    }
    for who, rate, start, end in ORD_RATES:
        employee_id = employees[who] if who else None
        _insert(
            conn,
            t.pay_rate,
            team_id=team_id,
            pay_code_id=pay_codes["ORD"],
            employee_id=employee_id,
            project_id=None,
            scope_key=f"e={employee_id or ''};p=",
            rate=Decimal(rate),
            currency="AUD",
            effective_from=start,
            effective_to=end,
            source="seed",
        )


def _find(conn: Connection, table: sa.Table, key: Mapping[str, Any]) -> Any:
    """The id of the row of `table` with `key` (1 for a table without ids), or None."""
    where = [table.c[c].is_(None) if v is None else table.c[c] == v for c, v in key.items()]
    column = table.c.id if "id" in table.c else sa.literal(1)
    return conn.execute(sa.select(column).where(*where)).scalar()


def _insert(conn: Connection, table: sa.Table, **values: Any) -> Any:
    """Insert one row; return its id (None for a table without ids)."""
    if "id" not in table.c:
        conn.execute(table.insert().values(**values))
        return None
    return conn.execute(table.insert().values(**values).returning(table.c.id)).scalar_one()


def _ensure(
    conn: Connection, table: sa.Table, key: Mapping[str, Any], values: Mapping[str, Any]
) -> Any:
    """The row of `table` with `key`, inserted with `values` when missing; return its id."""
    found = _find(conn, table, key)
    return found if found is not None else _insert(conn, table, **key, **values)

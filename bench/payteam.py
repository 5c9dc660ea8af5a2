"""The benchmark's Pay team: a customer whose Pay already knows every Assignar worker and project.

A timesheet whose worker or project Pay does not know waits on a conflict, and the benchmark
would measure holds instead of loading. So the bench team has:

- an employee for each Assignar employee number (the first key matching tries). Two accounts of
  one person share a number in Assignar; both link to that one employee;
- an employee for each worker without an employee number (the simulator leaves every 12th
  blank, as real tenants do), with the worker's email (matching's second key) and a payroll
  number Pay gave it (`ASG-<Assignar id>`: Pay's numbers are unique, Assignar has none to copy);
- a project for each Assignar project, with its code (`external_id`, matching's first key), so
  near-duplicate projects ("Metro North Tunnel" and "Metro North Tunnel ") each link to their
  own project instead of waiting on a Duplicate Project conflict;
- no pay rates (nothing to disagree with).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from assignar_pipeline.client import AssignarClient
from assignar_pipeline.extract import RESOURCES
from assignar_pipeline.pay import tables as t
from assignar_pipeline.pay.seed import seed_demo

TEAM_NAME = "Bench Civil Pty Ltd"
OWNER = "priya.raman@example.com"  # a seeded Pay user; owner of the bench team too


def bench_team(engine: Engine, client: AssignarClient) -> int:
    """Create the bench team with one employee per Assignar worker; return its id."""
    seed_demo(engine)  # the built-in roles, their permissions and the users
    workers = list(
        client.iter_records(
            "users", fields=["id", "employee_id", "first_name", "last_name", "email"]
        )
    )
    projects = list(
        client.iter_records(RESOURCES["projects"], fields=["id", "name", "external_id"])
    )
    with engine.begin() as conn:
        owner = conn.execute(
            sa.select(t.team_role.c.id).where(
                t.team_role.c.team_id.is_(None), t.team_role.c.key == "owner"
            )
        ).scalar_one()
        user = conn.execute(
            sa.select(t.pay_user.c.id).where(t.pay_user.c.email == OWNER)
        ).scalar_one()
        team = conn.execute(
            t.team.insert()
            .values(name=TEAM_NAME, account_type="team", country="AU", currency="AUD",
                    timezone="Australia/Sydney")
            .returning(t.team.c.id)
        ).scalar_one()  # fmt: skip
        conn.execute(
            t.team_feature.insert(),
            [{"team_id": team, "feature": f, "enabled": True}
             for f in ("integrations", "job_costing")],
        )  # fmt: skip
        conn.execute(t.team_member.insert().values(team_id=team, user_id=user, role_id=owner))
        conn.execute(t.employee.insert(), employees(team, workers))
        known: set[str] = set()
        rows = []
        for p in projects:
            code = (p.get("external_id") or "").strip() or f"ASG-P{p['id']}"
            if code.casefold() in known:
                continue  # Pay's codes are unique: a second one links to the first by code
            known.add(code.casefold())
            rows.append({"team_id": team, "code": code, "name": p["name"] or code,
                         "status": "active", "origin": "manual"})  # fmt: skip
        if rows:
            conn.execute(t.project.insert(), rows)
    return team


def employees(team: int, workers: list[dict]) -> list[dict]:
    """One Pay employee per Assignar employee number, and one per worker without a number."""
    # Two accounts of one person share an employee number (the simulator's tenant has such a
    # pair, as real ones do); Pay's numbers are unique: one employee, both accounts link to it.
    numbered = {w["employee_id"]: w for w in reversed(workers) if w.get("employee_id")}
    rows = [
        {"team_id": team, "employee_number": number, "email": w["email"],
         "first_name": w["first_name"] or "?", "last_name": w["last_name"] or "?"}
        for number, w in numbered.items()
    ]  # fmt: skip
    rows += [
        {"team_id": team, "employee_number": f"ASG-{w['id']}", "email": w["email"],
         "first_name": w["first_name"] or "?", "last_name": w["last_name"] or "?"}
        for w in workers
        if not w.get("employee_id")
    ]  # fmt: skip
    return [{**r, "status": "active", "origin": "manual"} for r in rows]

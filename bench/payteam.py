"""The benchmark's Pay team: a customer whose Pay already holds every Assignar worker.

A team whose employees Pay does not know would hold every timesheet on a Worker Mismatch
conflict, and the benchmark would measure conflicts instead of loading. So the bench team has an
employee for each Assignar worker with the same employee number (the first key matching tries),
no projects (they are created from Assignar's) and no pay rates (nothing to disagree with).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from assignar_pipeline.client import AssignarClient
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
        # Assignar lets two workers share an employee number (the simulator's tenant does, as
        # real ones do); Pay does not: the first keeps it, the other waits on a conflict.
        numbered = {w["employee_id"]: w for w in reversed(workers) if w.get("employee_id")}
        conn.execute(
            t.employee.insert(),
            [
                {"team_id": team, "employee_number": w["employee_id"],
                 "first_name": w["first_name"] or "?", "last_name": w["last_name"] or "?",
                 "email": w["email"], "status": "active", "origin": "manual"}
                for w in numbered.values()
            ],
        )  # fmt: skip
    return team

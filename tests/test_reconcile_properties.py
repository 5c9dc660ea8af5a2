"""Properties of reconciliation on any data (Hypothesis), at the loader: staged Assignar records
in, Pay rows, conflicts and holds out, on SQLite and PostgreSQL. Each example is a small team and
tenant with overlapping people, projects and rates, then a random sequence of syncs, resolutions,
locks in Pay, upstream edits and rate changes.

- no Assignar timesheet is ever in Pay twice;
- every staged minute of the window has exactly one outcome, and Pay agrees: loaded records are
  in Pay with Assignar's minutes, held ones are in sync_hold (minutes in Pay + held + ignored +
  voided = minutes fetched; quarantine happens before staging and is covered by test_pipeline);
- Pay's rates change only together with a new resolution that the new rates point to;
- a refused resolution, or a sync right after any step, changes nothing.
"""

from __future__ import annotations

import hashlib
import itertools
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assignar_pipeline.connections import active_connections
from assignar_pipeline.load import (
    LOCKED_STATUSES,
    load_projects,
    load_timesheets,
    load_workers,
)
from assignar_pipeline.pay import tables as t
from assignar_pipeline.pay.database import create_pay_engine
from assignar_pipeline.reconcile.conflicts import CHOICES
from assignar_pipeline.reconcile.matching import (
    PayEmployee,
    PayProject,
    ProjectFacts,
    WorkerFacts,
    match_project,
    match_worker,
)
from assignar_pipeline.reconcile.normalize import norm_code, norm_email, norm_name, norm_person
from assignar_pipeline.reconcile.resolve import Choice, ResolutionError, resolve_conflicts

WINDOW = (date(2025, 11, 3), date(2025, 11, 10))
NOW = datetime(2025, 11, 14, 7, tzinfo=UTC)
OWNER = "owner@example.com"
_databases = itertools.count(1)

FIRST = ["Ann", "Anne", "Bob", "Rob"]
LAST = ["Lee", "Li", "Smith"]
NUMBERS = ["E1", "E2", "e1 ", "E3", None]
EMAILS = ["a@x.com", "A@X.com", "b@x.com", None]
DOBS = [None, date(1980, 1, 1), date(1990, 5, 5)]
RATES = [Decimal("40"), Decimal("44.8"), Decimal("46.1")]
CODES = ["P1", "p1", "P2", None]
NAMES = ["Site A", "Site A - Stage 2", "Site A Stage 2", "North Tunnel", "Nth Tunnel"]
STATUSES = ["APPROVED", "APPROVED_WITH_PAY_RATES", "SUBMITTED"]

people = st.tuples(
    st.sampled_from(NUMBERS),
    st.sampled_from(FIRST),
    st.sampled_from(LAST),
    st.sampled_from(EMAILS),
    st.sampled_from(DOBS),
)
worlds = st.fixed_dictionaries(
    {
        "employees": st.lists(people, max_size=4),
        "employee_rates": st.lists(
            st.tuples(st.integers(0, 3), st.sampled_from(RATES)), max_size=3
        ),
        "team_rate": st.one_of(st.none(), st.sampled_from(RATES)),
        "pay_projects": st.lists(
            st.tuples(st.sampled_from(CODES), st.sampled_from(NAMES)), max_size=2
        ),
        "workers": st.lists(people, min_size=1, max_size=4),
        "projects": st.lists(
            st.tuples(st.sampled_from(CODES), st.sampled_from(NAMES)), min_size=1, max_size=3
        ),
        "task_rates": st.lists(st.sampled_from(RATES), min_size=2, max_size=2),
        "timesheets": st.lists(
            st.tuples(
                st.integers(0, 4),  # worker (4: one Assignar never sent)
                st.integers(0, 3),  # project (3: none)
                st.integers(0, 1),  # task
                st.integers(0, 6),  # day of the window
                st.integers(0, 720),  # minutes
                st.sampled_from(STATUSES),
            ),
            max_size=12,
        ),
    }
)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("load")),
        st.tuples(st.just("resolve"), st.integers(0, 50), st.integers(0, 5), st.booleans()),
        st.tuples(st.just("lock"), st.integers(0, 50)),
        st.tuples(
            st.just("edit"),
            st.integers(0, 50),
            st.integers(0, 720),
            st.sampled_from(STATUSES),
            st.booleans(),
        ),
        st.tuples(st.just("rate"), st.integers(0, 1), st.sampled_from(RATES)),
    ),
    max_size=8,
)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def engine(request, tmp_path_factory):
    """One database per engine; every example empties it first."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('props') / 'pay.db'}"
    else:
        url = request.getfixturevalue("postgres").create_database(f"props_{next(_databases)}")
    engine = create_pay_engine(url)
    t.metadata.create_all(engine)  # the same schema as the migrations (test_migrations)
    yield engine
    engine.dispose()


def _empty(engine) -> None:
    with engine.begin() as conn:
        for table in reversed(t.metadata.sorted_tables):
            conn.execute(table.delete())


def _hash(*parts) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def _build(engine, world) -> int:
    """The team, its Pay records and the staged Assignar records; returns the connection id."""
    _empty(engine)
    with engine.begin() as conn:

        def add(table, **values):
            return conn.execute(
                table.insert().values(**values).returning(*table.primary_key)
            ).first()[0]

        team = add(t.team, name="T", account_type="team", country="AU", currency="AUD",
                   timezone="Australia/Sydney")  # fmt: skip
        role = add(t.team_role, team_id=None, key="owner", name="Owner")
        for permission in ("integrations.manage", "rates.edit", "payroll.manage"):
            add(t.role_permission, role_id=role, permission=permission)
        user = add(t.pay_user, email=OWNER, full_name="Owner")
        add(t.team_member, team_id=team, user_id=user, role_id=role, status="active")
        connection = add(
            t.connection, key="prop", team_id=team, region="au", client_id="c",
            client_secret_ref="S", timezone="Australia/Sydney", import_timesheets=True,
            import_orders=False, status="active", connected_by_user_id=user, created_at=NOW,
        )  # fmt: skip
        ordinary = add(t.pay_code, team_id=team, code="ORD", name="Ordinary", kind="ordinary")
        employees = []
        numbers = set()
        for number, first, last, email, dob in world["employees"]:
            number = None if number is None or norm_code(number) in numbers else number
            numbers.add(norm_code(number))
            employees.append(
                add(t.employee, team_id=team, employee_number=number, first_name=first,
                    last_name=last, email=email, dob=dob, status="active", origin="manual")
            )  # fmt: skip
        scoped = {}
        if world["team_rate"] is not None:
            scoped[None] = world["team_rate"]
        for index, rate in world["employee_rates"]:
            if index < len(employees):
                scoped[employees[index]] = rate
        for employee_id, rate in scoped.items():
            add(t.pay_rate, team_id=team, pay_code_id=ordinary, employee_id=employee_id,
                scope_key=f"e={employee_id or ''};p=", rate=rate, currency="AUD",
                effective_from=date(2025, 7, 1), source="seed")  # fmt: skip
        codes = set()
        for code, name in world["pay_projects"]:
            code = None if code is None or norm_code(code) in codes else code
            codes.add(norm_code(code))
            add(t.project, team_id=team, code=code, name=name, status="active", origin="manual")
        for i, (number, first, last, email, dob) in enumerate(world["workers"]):
            conn.execute(t.staging_worker.insert().values(
                connection_id=connection, assignar_id=1001 + i, employee_id=number or "",
                first_name=first, last_name=last, email=email, dob=dob, active=True,
                modified_time=NOW, fetched_at=NOW, content_hash=_hash("w", i),
            ))  # fmt: skip
        for i, (code, name) in enumerate(world["projects"]):
            conn.execute(t.staging_project.insert().values(
                connection_id=connection, assignar_id=201 + i, name=name, code=code,
                active=True, modified_time=NOW, fetched_at=NOW, content_hash=_hash("p", i),
            ))  # fmt: skip
        for task, rate in enumerate(world["task_rates"], start=1):
            conn.execute(t.assignar_rate.insert().values(
                connection_id=connection, task_assignar_id=task, pay_code="ORD", rate=rate,
                task_name=f"Task {task}", group_assignar_id=600 + task, group_name="G",
            ))  # fmt: skip
        for i, (worker, project, task, day, minutes, status) in enumerate(world["timesheets"]):
            has_project = project < len(world["projects"])
            conn.execute(t.staging_timesheet.insert().values(
                connection_id=connection, assignar_id=500001 + i,
                work_date=WINDOW[0] + timedelta(days=day), user_assignar_id=1001 + worker,
                project_assignar_id=201 + project if has_project else None,
                task_assignar_id=1 + task, **_times(day, minutes), status=status,
                processed=False, modified_time=NOW, fetched_at=NOW,
                content_hash=_hash("t", i, minutes, status),
            ))  # fmt: skip
    return connection


def _times(day: int, minutes: int) -> dict:
    start = datetime.combine(WINDOW[0] + timedelta(days=day), datetime.min.time(), UTC)
    start += timedelta(hours=21)  # 08:00 in Sydney
    lines = [{"ref": 1, "cost_code": "ACT-100", "minutes": minutes // 2},
             {"ref": 2, "cost_code": "ACT-120", "minutes": minutes - minutes // 2}]  # fmt: skip
    return {
        "start_at": start,
        "end_at": start + timedelta(minutes=minutes + 30),
        "timezone": "Australia/Sydney",
        "total_minutes": minutes,
        "lines": lines,
    }


def _sync(engine, connection):
    with engine.begin() as conn:
        load_projects(conn, connection, NOW)
        load_workers(conn, connection, NOW)
        return load_timesheets(conn, connection, NOW, WINDOW)


#: What reconciliation writes (the whole database is compared in test_reconcile).
WRITTEN = (
    t.client, t.project, t.employee, t.pay_rate, t.timesheet, t.timesheet_line,
    t.integration_link, t.sync_conflict, t.sync_hold, t.sync_hold_conflict, t.sync_resolution,
    t.timesheet_adjustment,
)  # fmt: skip


def _state(engine) -> dict[str, list]:
    with engine.connect() as conn:
        return {
            table.name: sorted(map(tuple, conn.execute(sa.select(table))), key=repr)
            for table in WRITTEN
        }


def _rates(engine) -> set[tuple]:
    with engine.connect() as conn:
        return {tuple(r) for r in conn.execute(sa.select(t.pay_rate))}


def _resolution_ids(engine) -> set[int]:
    with engine.connect() as conn:
        return set(conn.execute(sa.select(t.sync_resolution.c.id)).scalars())


def _choice(engine, pick: int, option: int, flag: bool) -> Choice | None:
    """A choice that fits some open conflict (its parameters may still be refused)."""
    with engine.connect() as conn:
        open_ = conn.execute(
            sa.select(t.sync_conflict)
            .where(t.sync_conflict.c.status == "open")
            .order_by(t.sync_conflict.c.id)
        ).all()
        if not open_:
            return None
        row = open_[pick % len(open_)]
        decision = CHOICES[row.kind][option % len(CHOICES[row.kind])]
        target = row.candidates[0]["pay_id"] if row.candidates else None
        if target is None and decision in ("merge", "map"):
            table = t.project if decision == "merge" else t.employee
            target = conn.execute(sa.select(table.c.id).order_by(table.c.id)).scalar()
    return Choice(
        row.id,
        decision,
        target=target,
        code="" if flag else None,
        employee_number="" if flag else None,
        rate=Decimal("45.25"),
        scope="occurrence" if flag else "going_forward",
    )


def _check_no_double_pay(engine) -> None:
    with engine.connect() as conn:
        doubled = conn.execute(
            sa.select(t.timesheet.c.source_external_id)
            .group_by(t.timesheet.c.source_connection_id, t.timesheet.c.source_external_id)
            .having(sa.func.count() > 1)
        ).all()
    assert doubled == []


def _check_conservation(engine, connection_id: int, counts) -> None:
    """Every staged minute of the window has one outcome, and Pay and sync_hold agree."""
    with engine.connect() as conn:
        staged = {
            r.assignar_id: r
            for r in conn.execute(
                sa.select(t.staging_timesheet).where(
                    t.staging_timesheet.c.connection_id == connection_id
                )
            )
        }
        pay = {r.source_external_id: r for r in conn.execute(sa.select(t.timesheet))}
        approved = dict(
            conn.execute(
                sa.select(
                    t.timesheet_adjustment.c.timesheet_id,
                    sa.func.sum(t.timesheet_adjustment.c.delta_minutes),
                )
                .where(t.timesheet_adjustment.c.status == "approved")
                .group_by(t.timesheet_adjustment.c.timesheet_id)
            ).all()
        )
        held = set(
            conn.execute(
                sa.select(t.sync_hold.c.assignar_id).where(t.sync_hold.c.entity == "timesheet")
            ).scalars()
        )
    assert set(counts.records) == set(staged)
    fetched = sum(r.total_minutes for r in staged.values())
    assert sum(counts.minutes.values()) == fetched
    accounted = {o: 0 for o in ("loaded", "held", "ignored", "voided")}
    for assignar_id, outcome in counts.records.items():
        minutes, row = staged[assignar_id].total_minutes, pay.get(assignar_id)
        kind = "loaded" if outcome in ("inserted", "updated", "unchanged", "adjusted") else outcome
        accounted[kind] += minutes
        if kind == "loaded":
            assert row is not None and row.status != "void"
            assert row.payable_minutes + int(approved.get(row.id, 0)) == minutes
        assert (kind == "held") == (assignar_id in held)
        if kind in ("ignored", "voided") and row is not None and row.status != "void":
            assert row.status in LOCKED_STATUSES, "a live, unlocked Pay row for an unpaid record"
    assert sum(accounted.values()) == fetched
    assert accounted["held"] == sum(staged[i].total_minutes for i in held)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(world=worlds, actions=steps)
def test_reconciliation_properties_hold_on_any_data(engine, world, actions):
    """No double pay, all minutes accounted, no unresolved rate change, reruns change nothing."""
    connection_id = _build(engine, world)
    (connection,) = active_connections(engine, ["prop"])
    for action in [("load",), *actions, ("load",)]:
        rates, resolutions = _rates(engine), _resolution_ids(engine)
        if action[0] == "load":
            counts = _sync(engine, connection)
            _check_conservation(engine, connection_id, counts)
            settled = _state(engine)
            _sync(engine, connection)
            assert _state(engine) == settled, "a second sync with nothing new changed something"
        elif action[0] == "resolve":
            choice = _choice(engine, *action[1:])
            if choice is None:
                continue
            before = _state(engine)
            try:
                resolve_conflicts(engine, [choice], OWNER, now=NOW)
            except ResolutionError:
                assert _state(engine) == before, "a refused resolution changed something"
            else:
                again = _state(engine)
                resolve_conflicts(engine, [choice], OWNER, now=NOW)
                assert _state(engine) == again, "resolving twice changed something"
        elif action[0] == "lock":
            with engine.begin() as conn:
                live = (
                    conn.execute(
                        sa.select(t.timesheet.c.id)
                        .where(t.timesheet.c.status == "imported")
                        .order_by(t.timesheet.c.id)
                    )
                    .scalars()
                    .all()
                )
                if live:
                    conn.execute(
                        t.timesheet.update()
                        .where(t.timesheet.c.id == live[action[1] % len(live)])
                        .values(status="paid", locked_at=NOW)
                    )
        elif action[0] == "edit" and world["timesheets"]:
            _, pick, minutes, status, deleted = action
            assignar_id = 500001 + pick % len(world["timesheets"])
            day = world["timesheets"][pick % len(world["timesheets"])][3]
            with engine.begin() as conn:
                conn.execute(
                    t.staging_timesheet.update()
                    .where(t.staging_timesheet.c.assignar_id == assignar_id)
                    .values(**_times(day, minutes), status=status,
                            voided_at=NOW if deleted else None,
                            content_hash=_hash("t", assignar_id, minutes, status))
                )  # fmt: skip
        elif action[0] == "rate":
            with engine.begin() as conn:
                conn.execute(
                    t.assignar_rate.update()
                    .where(t.assignar_rate.c.task_assignar_id == action[1] + 1)
                    .values(rate=action[2])
                )
        _check_no_double_pay(engine)
        new_resolutions = _resolution_ids(engine) - resolutions
        changed = _rates(engine) ^ rates
        if changed:
            assert new_resolutions, f"Pay's rates changed without a resolution after {action}"
            added = {r for r in _rates(engine) - rates if r[0] not in {old[0] for old in rates}}
            assert {int(r[-1]) for r in added} <= new_resolutions
            assert all(r[-2].endswith("_resolution") for r in added)


# -- matching rules on any names, numbers and emails ----------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    staged=people,
    employees=st.lists(people, max_size=6),
    shared=st.booleans(),
)
def test_a_worker_links_only_on_an_exact_key(staged, employees, shared):
    """A worker links only on an uncontradicted number, unique email, or name with birthday."""
    worker = WorkerFacts(1, *staged)
    pay = [PayEmployee(i, *e, "active") for i, e in enumerate(employees, start=1)]
    email = norm_email(worker.email)
    match = match_worker(worker, pay, {email: 2 if shared else 1} if email else {})
    if not match.linked:
        assert match.reason
        return
    e = next(p for p in pay if p.id == match.pay_id)
    number = norm_code(worker.employee_id)
    if match.rule == "employee_number":
        assert number and norm_code(e.employee_number) == number
        assert sum(norm_code(p.employee_number) == number for p in pay) == 1
    elif match.rule == "email":
        assert email and norm_email(e.email) == email and not shared
        assert sum(norm_email(p.email) == email for p in pay) == 1
    else:
        assert match.rule == "name_dob"
        assert worker.dob is not None and e.dob == worker.dob
        assert norm_person(e.first_name, e.last_name) == norm_person(
            worker.first_name, worker.last_name
        )
    if match.rule != "employee_number" and number and e.employee_number:
        pytest.fail("a contradicting employee number was overridden by a weaker key")


@settings(max_examples=300, deadline=None)
@given(
    staged=st.tuples(st.sampled_from(CODES), st.sampled_from(NAMES), st.sampled_from([None, 1, 2])),
    pay=st.lists(
        st.tuples(st.sampled_from(CODES), st.sampled_from(NAMES), st.sampled_from([None, 1, 2])),
        max_size=4,
    ),
)
def test_a_project_links_only_on_its_code_or_same_name_and_client(staged, pay):
    """A project links only on its code, or its name and client with no contradicting code."""
    code, name, client = staged
    facts = ProjectFacts(1, name, code, None, client)
    projects = [PayProject(i, n, c, cl, None, "active") for i, (c, n, cl) in enumerate(pay, 1)]
    match = match_project(facts, projects)
    if not match.linked:
        assert bool(match.candidates) == bool(match.reason)
        return
    p = next(p for p in projects if p.id == match.pay_id)
    if match.rule == "exact_code":
        assert norm_code(code) and norm_code(p.code) == norm_code(code)
    else:
        assert match.rule == "normalized_name"
        assert norm_name(p.name) == norm_name(name) and p.client_id == client
        assert not (norm_code(code) and norm_code(p.code))


@pytest.mark.parametrize(
    ("assignar", "pay", "candidate"),
    [
        ("Metro North Tunnel", "Metro Nth Tunnel", True),
        ("Sydney Metro Northwest", "Sydney Metro North West", True),
        ("Karratha Data Centre", "Parramatta Data Centre", False),
        ("Aurora Hospital Expansion Stage 2", "Aurora Hospital Expansion Stage 3", False),
        ("Liverpool Road Widening Stage 2", "Liverpool Road Widening", False),
    ],
)
def test_similar_project_names_are_candidates_only_when_numbers_and_words_agree(
    assignar, pay, candidate
):
    """Another stage or place is no duplicate candidate; an abbreviation or split word is."""
    match = match_project(
        ProjectFacts(1, assignar, "A-1", None, None),
        [PayProject(7, pay, None, None, None, "active")],
    )
    assert not match.linked
    assert bool(match.candidates) == candidate

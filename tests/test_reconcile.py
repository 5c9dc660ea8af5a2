"""Reconciliation scenarios on the demo data: Dagster runs on a real instance, the simulator over
HTTP, Pay on SQLite and PostgreSQL. The demo is synced once per engine; each test resolves on a
copy of that database."""

from __future__ import annotations

import itertools
import re
import shlex
from datetime import date, timedelta
from decimal import Decimal

import dagster as dg
import pytest
import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations

from assets.reconcile import EXAMPLE_RESOLUTION
from assignar_pipeline.connections import active_connections
from assignar_pipeline.definitions import defs
from assignar_pipeline.pay import tables as t
from assignar_pipeline.pay.database import create_pay_engine, migrate
from assignar_pipeline.reconcile.resolve import Choice, ResolutionError, resolve_conflicts
from assignar_pipeline.simulator import TenantConfig
from assignar_pipeline.status import connection_status
from assignar_pipeline.steps import load_for
from resources import PayDatabaseResource
from resources.notify import NotifyResource
from tests.support.dagster_web import dagster_webserver
from tests.support.pipeline import (
    LAST_4_WEEKS,
    Pipeline,
    add_team,
    make_pipeline,
    staged_timesheets,
)
from tests.support.reconcile import (
    ADMIN,
    OWNER,
    Snapshot,
    cli,
    conflict,
    copy_snapshot,
    employee_id,
    held_by,
    kinds,
    one,
    project_id,
    rows,
)

# Assignar ids in the demo tenant (see assignar_pipeline/pay/seed.py).
JUN, FATIMA, PRIYA_NGUYEN, AMELIA, WILLIAM_SMITH = 1004, 1005, 1018, 1025, 1026
WESTFIELD_DUPLICATE, METRO_NORTH = 202, 205
DEMO_CONFLICTS = {"duplicate_project": 2, "worker_mismatch": 11, "rate_difference": 1}
_copies = itertools.count(1)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def demo_synced(request, tmp_path_factory, _simulator_server):
    """The demo team connected and its last 4 weeks synced once, through Dagster."""
    _simulator_server.simulator.reset(TenantConfig())
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("snapshot") / "pay.db"
        url, name = f"sqlite:///{path}", str(path)
    else:
        name = f"reconcile_snapshot_{next(_copies)}"
        url = request.getfixturevalue("postgres").create_database(name)
    engine = create_pay_engine(url)
    migrate(engine)
    with (
        pytest.MonkeyPatch.context() as mp,
        dg.instance_for_test(temp_dir=str(tmp_path_factory.mktemp("dagster"))) as instance,
    ):
        assert make_pipeline(engine, _simulator_server, instance, mp).materialize().success
    engine.dispose()
    return Snapshot(request.param, url, name)


@pytest.fixture
def synced(demo_synced, simulator, tmp_path, monkeypatch, request):
    """A copy of the synced demo database, with the simulator as it was synced."""
    postgres = request.getfixturevalue("postgres") if demo_synced.kind == "postgresql" else None
    url = copy_snapshot(demo_synced, postgres, tmp_path, f"reconcile_{next(_copies)}")
    monkeypatch.setenv("ASSIGNAR_API_URL", simulator.api_url)
    monkeypatch.setenv("ASSIGNAR_TOKEN_URL", simulator.token_url)
    monkeypatch.setenv("DEMO_SECRET", "demo-secret-change-me")
    engine = create_pay_engine(url)
    team_id = one(engine, t.connection, t.connection.c.key == "demo").team_id
    home = tmp_path / "dagster"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        yield Pipeline(engine, simulator, team_id, instance)
    engine.dispose()


def _connection(pipeline: Pipeline):
    return one(pipeline.engine, t.connection, t.connection.c.key == "demo")


def _check(result: dg.ExecuteInProcessResult, asset: str, name: str):
    return next(
        e
        for e in result.get_asset_check_evaluations()
        if e.check_name == name and e.asset_key.path[-1] == asset
    )


def _day(day: date) -> tuple[date, date]:
    return day, day + timedelta(days=1)


# -- raised once --------------------------------------------------------------------------------


def test_each_conflict_kind_is_raised_once_and_only_once_across_syncs(synced):
    """Each demo conflict is raised once; later syncs find the same rows and change nothing."""
    engine = synced.engine
    assert kinds(engine) == DEMO_CONFLICTS
    jun = conflict(engine, "rate_difference", JUN)
    assert (jun.details["assignar"]["rate"], jun.details["pay"]["rate"]) == ("44.8000", "46.1000")
    assert "pay-rate group 'L3 Carpenter'" in jun.details["assignar"]["source"]
    metro = conflict(engine, "duplicate_project", METRO_NORTH)
    assert metro.candidates[0]["name"] == "Metro Nth Tunnel"
    westfield = conflict(engine, "duplicate_project", WESTFIELD_DUPLICATE)
    assert westfield.candidates[0]["code"] == "PRJ-0001"
    priya = conflict(engine, "worker_mismatch", PRIYA_NGUYEN)
    assert [c["name"] for c in priya.candidates] == ["Pria Nguyen"]
    smiths = conflict(engine, "worker_mismatch", WILLIAM_SMITH).candidates
    assert [c["name"] for c in smiths][:3] == ["Bill Smith", "Tom Smith", "Ethan Smith"]
    assert held_by(engine, jun.id) and held_by(engine, priya.id)
    unexplained = [
        h
        for h in rows(engine, t.sync_hold, t.sync_hold.c.entity == "timesheet")
        if not rows(
            engine, t.sync_hold_conflict, t.sync_hold_conflict.c.assignar_id == h.assignar_id
        )
    ]
    assert unexplained == [], "every held timesheet waits on a conflict"
    ids, before = {c.id for c in rows(engine, t.sync_conflict)}, synced.checksums()

    result = synced.materialize()
    assert result.success
    assert synced.checksums() == before
    assert {c.id for c in rows(engine, t.sync_conflict)} == ids
    warning = _check(result, "pay_employees", "no_open_conflicts")
    assert not warning.passed and warning.severity == dg.AssetCheckSeverity.WARN
    headline, *named, more = warning.description.splitlines()
    assert headline.startswith("demo: Sync Warning: 2 Duplicate Project, 1 Rate Difference")
    assert len(named) == 5
    assert all(
        re.fullmatch(r"- demo [0-9a-f]{8} Worker Mismatch: .+ \(holds .+\)", n) for n in named
    )
    timesheets = _check(result, "pay_timesheets", "no_open_conflicts").description.splitlines()
    assert re.search(r"timesheets of \d{4}-\d\d-\d\d\.\.\d{4}-\d\d-\d\d\)$", timesheets[1])
    assert more == "... and 6 more (see the command)"
    demo = warning.metadata["per_connection"].value["demo"]
    assert demo["status"] == "Sync Warning"
    assert demo["open_conflicts"]["worker_mismatch"] == 11
    assert demo["command"] == "assignar-pipeline conflicts list --connection demo"

    paid = next(
        r
        for r in rows(
            engine, t.timesheet, t.timesheet.c.source_connection_id == _connection(synced).id
        )
        if r.status == "imported"
    )
    with engine.begin() as conn:
        conn.execute(t.timesheet.update().where(t.timesheet.c.id == paid.id).values(status="paid"))
    synced.simulator.simulator.update(
        "timesheets-expanded", paid.source_external_id, {"total_time": "01:15"}
    )
    for _ in range(2):
        assert synced.materialize(["assignar_timesheets", "pay_timesheets"], _day(paid.work_date))
        assert kinds(engine, "open")["locked_changed"] == 1
    after = one(engine, t.timesheet, t.timesheet.c.id == paid.id)._asdict()
    assert {**after, "status": "imported"} == paid._asdict(), "the paid timesheet is unchanged"
    adjustment = conflict(engine, "locked_changed", paid.source_external_id)
    assert held_by(engine, adjustment.id) == {paid.source_external_id: paid.work_date}
    listed = cli(synced, "conflicts", "list", "--kind", "timesheet_adjustment")
    assert listed.exit_code == 0, listed.output
    assert f"{adjustment.id[:8]}  demo  Timesheet Adjustment  (holds 1 timesheet" in listed.output
    assert cli(synced, "conflicts", "list", "--kind", "Timesheet Adjustment").output == (
        listed.output
    )
    shown = cli(synced, "conflicts", "list", "--help").output
    assert "timesheet_adjustment" in shown and "locked_changed" not in shown


# -- resolutions --------------------------------------------------------------------------------


def test_each_resolution_choice_gives_the_pay_rows_a_payroll_officer_expects(synced):
    """Each choice gives the links, rows and rates chosen; held timesheets keep their hours."""
    engine, connection_id = synced.engine, _connection(synced).id
    metro_nth = project_id(engine, "Metro Nth Tunnel")
    pria = employee_id(engine, "Pria", "Nguyen")
    ids = {
        "metro": conflict(engine, "duplicate_project", METRO_NORTH).id,
        "westfield": conflict(engine, "duplicate_project", WESTFIELD_DUPLICATE).id,
        "priya": conflict(engine, "worker_mismatch", PRIYA_NGUYEN).id,
        "william": conflict(engine, "worker_mismatch", WILLIAM_SMITH).id,
        "fatima": conflict(engine, "worker_mismatch", FATIMA).id,
        "jun": conflict(engine, "rate_difference", JUN).id,
    }
    held = {k: held_by(engine, v) for k, v in ids.items()}
    commands = [
        ("metro", "merge", "--target", str(metro_nth)),
        ("westfield", "create_new"),
        ("priya", "map", "--target", str(pria)),
        ("william", "create_employee"),
        ("fatima", "ignore"),
        ("jun", "use_assignar_rate", "--note", "Assignar has the EBA rate"),
    ]
    for key, choice, *options in commands:
        result = cli(synced, "conflicts", "resolve", ids[key][:8], choice, "--by", OWNER, *options)
        assert result.exit_code == 0, result.output
        assert f"Resolved {ids[key][:8]}" in result.output

    def link(entity, external_id):
        return one(
            engine,
            t.integration_link,
            t.integration_link.c.connection_id == connection_id,
            t.integration_link.c.entity == entity,
            t.integration_link.c.external_id == external_id,
        )

    assert (link("project", METRO_NORTH).pay_id, link("project", METRO_NORTH).match_rule) == (
        metro_nth,
        "resolution_merge",
    )
    created = one(engine, t.project, t.project.c.id == link("project", WESTFIELD_DUPLICATE).pay_id)
    assert (created.name, created.code, created.origin) == (
        "Westfield Parramatta - Stage 2",
        "PRJ-00001",
        "resolution",
    )
    assert link("worker", PRIYA_NGUYEN).pay_id == pria
    smith = one(engine, t.employee, t.employee.c.id == link("worker", WILLIAM_SMITH).pay_id)
    assert (smith.employee_number, smith.first_name, smith.origin) == (
        "E10165",
        "William",
        "resolution",
    )
    assert (link("worker", FATIMA).pay_id, link("worker", FATIMA).match_rule) == (None, "ignored")

    staged = staged_timesheets(engine, connection_id, LAST_4_WEEKS)
    pay = {r.source_external_id: r for r in rows(engine, t.timesheet)}
    still_held = {h.assignar_id for h in rows(engine, t.sync_hold)}
    for key in ("priya", "westfield", "jun"):
        loaded = [i for i in held[key] if i not in still_held]
        assert loaded, f"nothing {key} held was loaded"
        for assignar_id in loaded:
            assert pay[assignar_id].payable_minutes == staged[assignar_id].total_minutes
            lines = rows(
                engine, t.timesheet_line, t.timesheet_line.c.timesheet_id == pay[assignar_id].id
            )
            assert sum(line.minutes for line in lines) == staged[assignar_id].total_minutes
        for assignar_id in set(held[key]) & still_held:  # also waiting on an unresolved worker
            waits = rows(
                engine, t.sync_hold_conflict, t.sync_hold_conflict.c.assignar_id == assignar_id
            )
            assert waits and ids[key] not in {w.conflict_id for w in waits}
    assert all(pay[i].employee_id == pria for i in held["priya"])
    assert not set(held["fatima"]) & set(pay), "an ignored worker's timesheets are not in Pay"
    assert not rows(engine, t.sync_hold, t.sync_hold.c.assignar_id.in_(held["fatima"]))

    resolution = one(engine, t.sync_resolution, t.sync_resolution.c.conflict_id == ids["jun"])
    owner = one(engine, t.pay_user, t.pay_user.c.email == OWNER)
    assert (resolution.decided_by_user_id, resolution.note) == (
        owner.id,
        "Assignar has the EBA rate",
    )
    start = min(held["jun"].values())
    jun_rates = rows(
        engine, t.pay_rate, t.pay_rate.c.employee_id == employee_id(engine, "Jun", "MacDonald")
    )
    rise = next(r for r in jun_rates if r.rate == Decimal("46.1"))
    new = next(r for r in jun_rates if r.source != "seed")
    assert rise.effective_to == start, "the rate it replaces ends the day the new one starts"
    assert (new.rate, new.effective_from, new.effective_to) == (Decimal("44.8"), start, None)
    assert (new.source, new.source_ref) == ("assignar_resolution", str(resolution.id))
    for assignar_id in held["jun"]:
        for line in rows(
            engine, t.timesheet_line, t.timesheet_line.c.timesheet_id == pay[assignar_id].id
        ):
            assert (line.rate, line.pay_rate_id) == (Decimal("44.8000"), new.id)
            assert line.amount == (line.minutes * Decimal("44.80") / 60).quantize(Decimal("0.01"))
    # William Smith is new in Pay, so the team default (38.50) meets Assignar's Carpenter rate.
    william = conflict(engine, "rate_difference", WILLIAM_SMITH)
    assert william.status == "open" and held_by(engine, william.id)

    settled = synced.checksums()
    for key, choice, *options in commands:
        again = cli(synced, "conflicts", "resolve", ids[key], choice, "--by", OWNER, *options)
        assert again.exit_code == 0 and "Already resolved" in again.output, again.output
    assert synced.checksums() == settled
    assert synced.materialize().success
    assert synced.checksums() == settled


@pytest.mark.parametrize(
    ("choice", "expected_rate", "rate_source", "rates_added"),
    [
        (Choice("", "keep_pay_rate"), "46.1000", "employee", 0),
        (
            Choice("", "set_rate", rate=Decimal("45.5"), scope="occurrence"),
            "45.5000",
            "resolution",
            0,
        ),
        (Choice("", "use_assignar_rate", scope="occurrence"), "44.8000", "resolution", 0),
        (
            Choice("", "set_rate", rate=Decimal("45.5"), effective_from=date(2025, 11, 1)),
            None,
            None,
            1,
        ),
    ],
    ids=[
        "keep_pay_rate",
        "set_rate_occurrence",
        "use_assignar_rate_occurrence",
        "set_rate_from_date",
    ],
)
def test_rate_choices_price_the_held_timesheets_as_chosen(
    synced, choice, expected_rate, rate_source, rates_added
):
    """Held timesheets load at the chosen rate; Pay's rates change only from a chosen date."""
    engine = synced.engine
    jun = conflict(engine, "rate_difference", JUN)
    held = held_by(engine, jun.id)
    rates_before = rows(engine, t.pay_rate)
    choice = Choice(jun.id, choice.choice, rate=choice.rate, scope=choice.scope,
                    effective_from=choice.effective_from)  # fmt: skip
    result = resolve_conflicts(engine, [choice], OWNER)
    assert result.unblocked["demo"] == sorted(set(held.values()))
    pay = {r.source_external_id: r for r in rows(engine, t.timesheet)}
    for assignar_id, day in held.items():
        for line in rows(
            engine, t.timesheet_line, t.timesheet_line.c.timesheet_id == pay[assignar_id].id
        ):
            if expected_rate is None:  # set_rate from 1 November: Pay's 46.10 before, 45.50 from
                wanted = "45.5000" if day >= date(2025, 11, 1) else "46.1000"
                assert (str(line.rate), line.rate_source) == (wanted, "employee")
            else:
                assert (str(line.rate), line.rate_source) == (expected_rate, rate_source)
                resolved = one(engine, t.sync_conflict, t.sync_conflict.c.id == jun.id)
                mine = resolved.resolution_id if rate_source == "resolution" else None
                assert line.resolution_id == mine
    assert len(rows(engine, t.pay_rate)) == len(rates_before) + rates_added
    assert kinds(engine, "open")["rate_difference"] == 0, "a chosen rate is not a new disagreement"
    settled = synced.checksums()
    demo = active_connections(engine, ["demo"])
    load_for(engine, demo, "timesheets", run_id="again", window=LAST_4_WEEKS)
    assert synced.checksums() == settled


# -- the Resolve Conflicts job ------------------------------------------------------------------


def _resolve_job(
    pipeline: Pipeline, resolutions: list[dict], decided_by: str = OWNER, dagster_url=None
):
    return defs.get_job_def("resolve_conflicts").execute_in_process(
        instance=pipeline.instance,
        resources={
            "pay": PayDatabaseResource(url=pipeline.url),
            # The webserver the job launches its backfill through (GraphQL).
            "notify": NotifyResource(dagster_url=dagster_url),
        },
        run_config={
            "ops": {
                "resolve_conflicts_op": {
                    "config": {"decided_by": decided_by, "resolutions": resolutions}
                }
            }
        },
        raise_on_error=False,
    )


def test_resolve_conflicts_job_launches_runs_for_exactly_the_dates_it_unblocks(synced, tmp_path):
    """The job loads what it unblocks and backfills exactly those dates, which change nothing."""
    with dagster_webserver(synced.instance.root_directory, tmp_path / "webserver.log") as url:
        _resolve_job_launches_runs_for_exactly_the_dates_it_unblocks(synced, url)


def _resolve_job_launches_runs_for_exactly_the_dates_it_unblocks(synced, url):
    engine = synced.engine
    amelia = conflict(engine, "worker_mismatch", AMELIA)
    priya = conflict(engine, "worker_mismatch", PRIYA_NGUYEN)
    dates = set(held_by(engine, amelia.id).values()) | set(held_by(engine, priya.id).values())
    rodrigues, pria = (
        employee_id(engine, "Amelia", "Rodrigues"),
        employee_id(engine, "Pria", "Nguyen"),
    )
    result = _resolve_job(
        synced,
        [
            {"conflict": amelia.id[:8], "choice": "map", "target": rodrigues},
            {"conflict": priya.id, "choice": "map", "target": pria, "note": "same dob"},
        ],
        dagster_url=url,
    )
    assert result.success
    assert not held_by(engine, amelia.id) and not held_by(engine, priya.id)
    (backfill,) = synced.instance.get_backfills()
    target = backfill.asset_backfill_data.target_subset
    partitions = {p.partition_key for p in target.iterate_asset_partitions()}
    assert partitions == {d.isoformat() for d in dates}
    assert {k.path[-1] for k in target.asset_keys} == {"pay_timesheets", "pay_orders"}
    assert backfill.run_config == {"resources": {"scope": {"config": {"connections": ["demo"]}}}}

    settled = synced.checksums()
    ran = synced.materialize(
        ["pay_timesheets", "pay_orders"], (min(dates), max(dates) + timedelta(days=1))
    )
    assert ran.success and synced.checksums() == settled
    assert _check(ran, "pay_timesheets", "minutes_parity").passed

    refused = _resolve_job(synced, [{"conflict": amelia.id, "choice": "merge", "target": 1}])
    assert not refused.success
    failure = next(e for e in refused.all_events if e.event_type_value == "STEP_FAILURE")
    assert "does not resolve a Worker Mismatch" in str(failure.event_specific_data)


def test_resolve_conflicts_offers_an_example_that_decides_nothing(synced):
    """`resolutions` defaults to the shape of a whole decision (what the Launchpad's "Scaffold
    all default config" writes out); launched unchanged it is refused, says where the ids are,
    and no conflict is resolved."""
    engine = synced.engine
    job = defs.get_job_def("resolve_conflicts")
    op = job.run_config_schema.config_type.fields["ops"].config_type.fields["resolve_conflicts_op"]
    fields = op.config_type.fields["config"].config_type.fields
    assert fields["resolutions"].default_value == [EXAMPLE_RESOLUTION]  # what the UI scaffolds
    assert set(EXAMPLE_RESOLUTION) >= {"conflict", "choice", "target"}
    assert fields["decided_by"].is_required, "who decides is never defaulted"
    open_before = kinds(engine, "open")

    refused = job.execute_in_process(
        instance=synced.instance,
        resources={"pay": PayDatabaseResource(url=synced.url)},
        run_config={"ops": {"resolve_conflicts_op": {"config": {"decided_by": OWNER}}}},
        raise_on_error=False,
    )

    failure = next(e for e in refused.all_events if e.event_type_value == "STEP_FAILURE")
    description = failure.event_specific_data.user_failure_data.description
    assert description.startswith("Refused: No conflict has the id 'replace-me'")
    assert "conflicts list" in description
    assert kinds(engine, "open") == open_before
    assert rows(engine, t.sync_resolution) == []


# -- adjustments --------------------------------------------------------------------------------


@pytest.mark.parametrize("decision", ["accept_adjustment", "reject_adjustment"])
def test_a_timesheet_pay_has_paid_is_never_changed_by_an_upstream_edit(synced, decision):
    """An upstream edit of a paid timesheet becomes an adjustment; the timesheet never changes."""
    engine = synced.engine
    paid = next(r for r in rows(engine, t.timesheet) if r.status == "imported")
    with engine.begin() as conn:
        conn.execute(t.timesheet.update().where(t.timesheet.c.id == paid.id).values(status="paid"))
    paid = one(engine, t.timesheet, t.timesheet.c.id == paid.id)
    new_minutes = paid.payable_minutes - 60  # the end time corrected an hour earlier
    synced.simulator.simulator.update(
        "timesheets-expanded",
        paid.source_external_id,
        {"total_time": f"{new_minutes // 60:02d}:{new_minutes % 60:02d}"},
    )
    window = _day(paid.work_date)
    assert synced.materialize(["assignar_timesheets", "pay_timesheets"], window).success
    adjustment = conflict(engine, "locked_changed", paid.source_external_id)
    assert adjustment.details["new_minutes"] == new_minutes
    assert paid.source_external_id in held_by(engine, adjustment.id)

    with pytest.raises(ResolutionError, match=r"payroll\.manage"):
        resolve_conflicts(engine, [Choice(adjustment.id, decision)], "sione.macdonald@example.com")
    resolve_conflicts(engine, [Choice(adjustment.id, decision)], OWNER)
    recorded = one(
        engine, t.timesheet_adjustment, t.timesheet_adjustment.c.conflict_id == adjustment.id
    )
    assert (recorded.timesheet_id, recorded.delta_minutes, recorded.reason) == (
        paid.id,
        -60,
        "edited_after_lock",
    )
    assert recorded.status == ("approved" if decision == "accept_adjustment" else "rejected")
    assert one(engine, t.timesheet, t.timesheet.c.id == paid.id) == paid
    settled = synced.checksums()
    ran = synced.materialize(["pay_timesheets"], window)
    assert ran.success and synced.checksums() == settled
    assert _check(ran, "pay_timesheets", "minutes_parity").passed
    assert one(engine, t.timesheet, t.timesheet.c.id == paid.id) == paid


def test_the_resolve_example_that_conflicts_show_prints_works_as_written(synced):
    """`conflicts show` ends with a complete resolve command (the target a merge or map needs,
    a decider with the permission); run as printed, it resolves the conflict."""
    engine = synced.engine
    for kind, subject in (
        ("duplicate_project", METRO_NORTH),
        ("worker_mismatch", PRIYA_NGUYEN),
        ("worker_mismatch", FATIMA),  # no candidate: the example creates the employee
        ("rate_difference", JUN),
    ):
        shown = cli(synced, "conflicts", "show", conflict(engine, kind, subject).id[:8])
        example = next(x for x in shown.output.splitlines() if x.startswith("  e.g. "))
        program, *args = shlex.split(example.removeprefix("  e.g. "))
        assert program == "assignar-pipeline"
        ran = cli(synced, *args)
        assert ran.exit_code == 0, f"{example}: {ran.output}"
        assert conflict(engine, kind, subject).status == "resolved", example


# -- checks: the failing branches, end to end ---------------------------------------------------


def test_a_payroll_correction_in_pay_fails_minutes_parity_naming_employee_and_day(synced):
    """Pay's minutes corrected after the load: minutes_parity fails (ERROR, not blocking) and
    names the connection, the employee and the day; the run still succeeds."""
    engine = synced.engine
    corrected = next(r for r in rows(engine, t.timesheet) if r.status == "imported")
    with engine.begin() as conn:
        conn.execute(
            t.timesheet.update()
            .where(t.timesheet.c.id == corrected.id)
            .values(payable_minutes=t.timesheet.c.payable_minutes - 5)
        )
    person = one(engine, t.employee, t.employee.c.id == corrected.employee_id)

    result = synced.materialize(["pay_timesheets"], _day(corrected.work_date))
    assert result.success, "a mismatch is reported, it does not fail the run"
    check = _check(result, "pay_timesheets", "minutes_parity")
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    day = corrected.work_date.isoformat()
    assert check.description.startswith("1 employee-day differs from Assignar")
    assert f"demo: {person.first_name} {person.last_name} ({person.employee_number})" in (
        check.description
    )
    assert f"on {day}: Pay " in check.description and " min, Assignar " in check.description
    (first,) = check.metadata["first"].value
    assert first["connection"] == "demo" and first["work_date"] == day
    assert first["pay_minutes"] == first["assignar_minutes"] - 5


def test_a_timesheet_in_pay_twice_fails_the_blocking_duplicate_check_naming_it(synced):
    """A Pay database without the unique guard holding one Assignar timesheet twice: the
    blocking no_duplicate_timesheets check fails the step and names connection, employee, day."""
    engine = synced.engine
    # A Pay schema made by hand, without our unique constraint on the Assignar id. A plain
    # engine: SQLite rebuilds the table to drop it, which foreign-key enforcement would refuse.
    plain = sa.create_engine(engine.url)
    with (
        plain.begin() as conn,
        Operations(MigrationContext.configure(conn)).batch_alter_table("timesheet") as batch,
    ):
        batch.drop_constraint("uq_timesheet_source_connection_id_source_external_id", "unique")
    plain.dispose()
    original = next(r for r in rows(engine, t.timesheet) if r.status == "imported")
    with engine.begin() as conn:
        copy = conn.execute(
            t.timesheet.insert()
            .values({k: v for k, v in original._asdict().items() if k != "id"})
            .returning(t.timesheet.c.id)
        ).scalar_one()
    person = one(engine, t.employee, t.employee.c.id == original.employee_id)

    result = synced.materialize(["pay_timesheets"], _day(original.work_date))
    assert not result.success, "a blocking check that fails ends the run failed"
    check = _check(result, "pay_timesheets", "no_duplicate_timesheets")
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert check.description.startswith("1 Assignar timesheet would be paid twice")
    assert (
        f"demo: {person.first_name} {person.last_name} ({person.employee_number}) on "
        f"{original.work_date}: Assignar timesheet {original.source_external_id} is Pay "
        f"timesheets {original.id}, {copy}"
    ) in check.description
    (first,) = check.metadata["first"].value
    assert first["pay_ids"] == [original.id, copy]


# -- refusals and status ------------------------------------------------------------------------


def test_refusals_say_what_to_fix_and_change_nothing(synced):
    """Wrong ids, choices, targets, codes, users or second decisions are refused with the fix."""
    engine = synced.engine
    metro = conflict(engine, "duplicate_project", METRO_NORTH)
    westfield = conflict(engine, "duplicate_project", WESTFIELD_DUPLICATE)
    jun = conflict(engine, "rate_difference", JUN)
    with engine.begin() as conn:
        other_team = conn.execute(
            t.team.insert()
            .values(name="Other Builders", account_type="team", country="AU", currency="AUD",
                    timezone="Australia/Sydney")
            .returning(t.team.c.id)
        ).scalar_one()  # fmt: skip
        foreign = conn.execute(
            t.project.insert()
            .values(team_id=other_team, name="Metro North Tunnel", status="active", origin="manual")
            .returning(t.project.c.id)
        ).scalar_one()
    before = synced.checksums()
    cases = [
        (Choice("zzzzzzzz", "merge"), OWNER, "No conflict has the id 'zzzzzzzz'"),
        (Choice("12", "merge"), OWNER, "too short"),
        (Choice(metro.id, "map", target=1), OWNER, "choose one of merge, create_new"),
        (Choice(metro.id, "merge", target=foreign), OWNER, "belongs to another Pay team"),
        (Choice(metro.id, "merge"), OWNER, "Say which Pay project"),
        (Choice(westfield.id, "create_new", code="prj-0001"), OWNER, "already has the code"),
        (Choice(jun.id, "keep_pay_rate"), ADMIN, "lacks the rates.edit permission"),
        (Choice(jun.id, "set_rate", rate=Decimal("-1")), OWNER, "positive rate"),
        (Choice(jun.id, "keep_pay_rate"), "nobody@example.com", "not an active member"),
    ]
    for choice, who, message in cases:
        with pytest.raises(ResolutionError, match=message):
            resolve_conflicts(engine, [choice], who)
    assert synced.checksums() == before
    resolve_conflicts(engine, [Choice(jun.id, "keep_pay_rate")], OWNER)
    with pytest.raises(ResolutionError, match="already resolved as 'keep_pay_rate'"):
        resolve_conflicts(engine, [Choice(jun.id, "use_assignar_rate")], OWNER)
    refused = cli(synced, "conflicts", "resolve", metro.id[:8], "map", "--by", OWNER)
    assert refused.exit_code == 1 and "does not resolve a Duplicate Project" in refused.output


def test_status_says_connected_sync_warning_or_error(synced, monkeypatch):
    """`status`: Sync Warning with the command, Connected before a sync, Error after a failure."""
    engine = synced.engine
    shown = cli(synced, "status")
    assert shown.exit_code == 0
    assert (
        "demo: Sync Warning: 2 Duplicate Project, 1 Rate Difference, 11 Worker Mismatch"
        in shown.output
    )
    assert "assignar-pipeline conflicts list --connection demo" in shown.output
    listed = cli(synced, "conflicts", "list", "--connection", "demo", "--kind", "rate_difference")
    assert listed.exit_code == 0 and "Jun MacDonald (E10012) ORD: Assignar 44.80" in listed.output
    jun = conflict(engine, "rate_difference", JUN)
    detail = cli(synced, "conflicts", "show", jun.id[:8])
    assert "choices: use_assignar_rate, keep_pay_rate, set_rate" in detail.output
    assert re.search(r"holds: \d+ timesheets of 2025-\d\d-\d\d\.\.2025-\d\d-\d\d\n", detail.output)

    monkeypatch.setenv("SECOND_SECRET", "demo-secret-change-me")
    # Another team: one team connects one Assignar account once.
    second = synced.connect("second", "SECOND_SECRET", team_id=add_team(engine, "Second"))
    with engine.connect() as conn:
        assert connection_status(conn, second).state == "Connected"
    monkeypatch.setenv("SECOND_SECRET", "rotated-away")
    assert not synced.materialize(["assignar_projects"], connections=["second"]).success
    with engine.connect() as conn:
        failed = connection_status(conn, second)
    assert failed.state == "Error" and "rejected the client id" in failed.last_error
    assert "second: Error: " in cli(synced, "status").output

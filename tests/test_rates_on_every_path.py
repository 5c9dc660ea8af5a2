"""No timesheet reaches Pay without the Rate Difference check: the initial import, a run of
`pay_timesheets` alone and the sync fetch Assignar's pay rates first when they are stale, and
the loader refuses a connection whose rates nobody fetched. Real runs against the simulator over
HTTP and Pay on SQLite."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from assignar_pipeline.connections import active_connections
from assignar_pipeline.definitions import defs
from assignar_pipeline.pay import tables as t
from assignar_pipeline.steps import load_for
from resources import AssignarResource, PayDatabaseResource, SyncScope
from sensors.initial_import import initial_import_sensor
from tests.support.pipeline import LAST_4_WEEKS, make_pipeline, pay_timesheets
from tests.support.reconcile import conflict, held_by, rows
from tests.support.sync import run_sync

pytestmark = pytest.mark.parametrize("pay_engine", ["sqlite"], indirect=True)

#: Jun MacDonald: Pay pays 46.10, Assignar says 44.80 (assignar_pipeline/pay/seed.py).
JUN = 1004
#: Everything an import runs except Assignar's rates.
WITHOUT_RATES = [
    "assignar_projects",
    "assignar_workers",
    "assignar_timesheets",
    "pay_projects",
    "pay_employees",
    "pay_timesheets",
]


@pytest.fixture
def instance(tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        yield instance


@pytest.fixture
def pipeline(pay_engine, simulator, instance, monkeypatch):
    return make_pipeline(pay_engine, simulator, instance, monkeypatch)


def _rate_fetches(engine, run_id: str | None = None) -> list:
    where = [t.sync_log.c.entity == "pay_rates"]
    if run_id:
        where.append(t.sync_log.c.run_id == run_id)
    return rows(engine, t.sync_log, *where)


def _jun_held_not_loaded(engine, connection_id: int) -> bool:
    """Jun's timesheets wait on the open Rate Difference, and none of them is in Pay."""
    rate_difference = conflict(engine, "rate_difference", JUN)
    held = held_by(engine, rate_difference.id)
    loaded = pay_timesheets(engine, connection_id)
    return rate_difference.status == "open" and bool(held) and not set(held) & set(loaded)


def test_the_initial_import_fetches_rates_and_raises_the_rate_difference(pipeline, instance):
    """Run as the sensor asks: rates are staged and Jun's timesheets wait on a Rate Difference."""
    with dg.build_sensor_context(
        instance=instance, resources={"pay": PayDatabaseResource(url=pipeline.url)}
    ) as context:
        (request,) = initial_import_sensor(context).run_requests
    assert dg.AssetKey("assignar_pay_rates") in request.asset_selection
    selected = set(request.asset_selection)
    tags = {
        **request.tags,  # the sensor's range ends on today's date; the simulator's is fixed
        "dagster/asset_partition_range_start": LAST_4_WEEKS[0].isoformat(),
        "dagster/asset_partition_range_end": (LAST_4_WEEKS[1] - timedelta(days=1)).isoformat(),
    }

    result = dg.materialize(
        [a for a in defs.assets if a.key in selected],
        instance=instance,
        tags=tags,
        run_config=request.run_config,
        resources={
            "assignar": AssignarResource(),
            "pay": PayDatabaseResource(url=pipeline.url),
            "scope": SyncScope.configure_at_launch(),
        },
    )

    assert result.success
    assert rows(pipeline.engine, t.assignar_rate)
    assert _jun_held_not_loaded(pipeline.engine, pipeline.connection_id("demo"))


def test_pay_timesheets_without_the_rates_asset_fetches_them_first(pipeline):
    """Materializing the Pay side without `assignar_pay_rates` still checks every rate."""
    result = pipeline.materialize(WITHOUT_RATES)

    assert result.success
    assert [r.error for r in _rate_fetches(pipeline.engine, result.run_id)] == [None]
    assert _jun_held_not_loaded(pipeline.engine, pipeline.connection_id("demo"))


def test_rates_fetched_within_the_hour_are_not_fetched_again(pipeline):
    """A second run right after an import reuses the rates it fetched: no second fetch."""
    assert pipeline.materialize().success
    again = pipeline.materialize(["assignar_timesheets", "pay_timesheets"])

    assert again.success
    assert _rate_fetches(pipeline.engine, again.run_id) == []


def test_the_loader_refuses_timesheets_whose_rates_nobody_fetched(pipeline):
    """A caller that skips the rates fetch loads nothing and the sync log says what to do."""
    staged = ["assignar_projects", "assignar_workers", "assignar_timesheets"]
    assert pipeline.materialize([*staged, "pay_projects", "pay_employees"]).success
    demo = active_connections(pipeline.engine, ["demo"])

    (loaded,) = load_for(pipeline.engine, demo, "projects", run_id="manual", window=None)
    refused = load_for(pipeline.engine, demo, "timesheets", run_id="manual", window=LAST_4_WEEKS)

    assert loaded.entity == "projects" and refused == []
    assert pay_timesheets(pipeline.engine, demo[0].id) == {}
    (row,) = rows(pipeline.engine, t.sync_log, t.sync_log.c.run_id == "manual",
                  t.sync_log.c.entity == "pay_timesheets")  # fmt: skip
    assert "Assignar's pay rates were not fetched" in row.error
    assert "assignar_pay_rates" in row.error


def test_a_sync_that_loads_timesheets_fetches_stale_rates_first(pipeline):
    """Rates older than an hour are fetched again by the sync before it loads a changed shift."""
    assert pipeline.materialize().success
    with pipeline.engine.begin() as conn:
        conn.execute(
            t.sync_log.update()
            .where(t.sync_log.c.entity == "pay_rates")
            .values(finished_at=datetime.now(UTC) - timedelta(hours=2))
        )
    timesheet = next(iter(pay_timesheets(pipeline.engine, pipeline.connection_id("demo"))))
    simulator = pipeline.simulator.simulator
    simulator.advance(10)
    simulator.update("timesheets-expanded", timesheet, {"total_time": "01:15"})

    result = run_sync(pipeline, ["demo"])

    assert result.success
    assert [r.error for r in _rate_fetches(pipeline.engine, result.run_id)] == [None]
    assert (
        pay_timesheets(pipeline.engine, pipeline.connection_id("demo"))[timesheet].payable_minutes
        == 75
    )

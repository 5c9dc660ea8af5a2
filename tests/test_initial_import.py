"""A new connection's initial import: the sensor evaluated against a real instance and Pay database,
its run request inspected, then run as requested against a simulator whose "now" is ours."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from assignar_pipeline.connections import disconnect
from assignar_pipeline.definitions import defs
from assignar_pipeline.simulator import TenantConfig
from resources import AssignarResource, PayDatabaseResource, SyncScope
from sensors.initial_import import initial_import_sensor
from tests.support.pipeline import make_pipeline, staged_timesheets
from tests.support.sync import add_connection, connection_id

pytestmark = pytest.mark.parametrize("pay_engine", ["sqlite"], indirect=True)


@pytest.fixture
def instance(tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        yield instance


def _evaluate(engine, instance, cursor=None) -> dg.SensorResult:
    url = engine.url.render_as_string(hide_password=False)
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"pay": PayDatabaseResource(url=url)}
    ) as context:
        return initial_import_sensor(context)


def test_a_new_connection_gets_its_last_28_days_alone_and_only_once(pay_engine, instance):
    """The first evaluation requests the 28 local dates up to today for each connection never
    imported, with its own assets; later evaluations request only connections created since."""
    add_connection(pay_engine, "perth", "Australia/Perth", import_orders=True)
    add_connection(pay_engine, "denver", "America/Denver")  # timesheets only

    first = _evaluate(pay_engine, instance)

    requests = {r.tags["assignar/connections"]: r for r in first.run_requests}
    assert set(requests) == {"perth", "denver"}
    for key, zone in (("perth", "Australia/Perth"), ("denver", "America/Denver")):
        request = requests[key]
        today = datetime.now(UTC).astimezone(ZoneInfo(zone)).date()
        assert request.tags["dagster/asset_partition_range_start"] == str(today - timedelta(27))
        assert request.tags["dagster/asset_partition_range_end"] == str(today)
        assert request.tags["assignar/operation"] == "initial_import"
        assert request.run_config == {"resources": {"scope": {"config": {"connections": [key]}}}}
    assert dg.AssetKey("pay_orders") in requests["perth"].asset_selection
    assert dg.AssetKey("pay_orders") not in requests["denver"].asset_selection
    assert dg.AssetKey("pay_timesheets") in requests["denver"].asset_selection

    again = _evaluate(pay_engine, instance, first.cursor)
    assert again.run_requests == []
    add_connection(pay_engine, "sydney")
    later = _evaluate(pay_engine, instance, again.cursor)
    assert [r.tags["assignar/connections"] for r in later.run_requests] == ["sydney"]
    assert json.loads(later.cursor)["seen"] == connection_id(pay_engine, "sydney")


def test_the_requested_import_runs_and_fills_staging_for_that_connection(
    pay_engine, simulator, instance, monkeypatch
):
    """Run as the sensor asked (assets, range tags, run config): the new connection's last 4
    weeks of today's simulator data are staged, and nothing for any other connection."""
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    simulator.simulator.reset(TenantConfig(now=now, days=35))
    pipeline = make_pipeline(pay_engine, simulator, instance, monkeypatch)  # connects 'demo'
    disconnect(pay_engine, "demo")  # one team connects one Assignar account once
    pipeline.connect("later", "DEMO_SECRET")
    first = _evaluate(pay_engine, instance)
    request = next(r for r in first.run_requests if r.tags["assignar/connections"] == "later")
    selected = set(request.asset_selection)

    result = dg.materialize(
        [a for a in defs.assets if a.key in selected],
        instance=instance,
        tags=request.tags,
        run_config=request.run_config,
        resources={
            "assignar": AssignarResource(),
            "pay": PayDatabaseResource(url=pipeline.url),
            "scope": SyncScope.configure_at_launch(),
        },
    )

    assert result.success
    today = now.astimezone(ZoneInfo("Australia/Sydney")).date()
    window = (today - timedelta(days=27), today + timedelta(days=1))
    later = connection_id(pay_engine, "later")
    assert len(staged_timesheets(pay_engine, later, window)) > 100
    assert staged_timesheets(pay_engine, connection_id(pay_engine, "demo"), window) == {}


def test_the_initial_import_runs_as_a_named_job(pay_engine, instance):
    """Its runs are `initial_import` runs in the UI, not an anonymous asset job."""
    job = defs.resolve_job_def("initial_import")

    assert initial_import_sensor.job_name == "initial_import"
    assert job.tags["assignar/operation"] == "initial_import"
    add_connection(pay_engine, "perth", "Australia/Perth", import_orders=True)
    (request,) = _evaluate(pay_engine, instance).run_requests
    assert set(request.asset_selection) <= set(job.asset_layer.selected_asset_keys)

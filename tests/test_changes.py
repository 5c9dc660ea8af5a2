"""Change detection through the sync job: deltas anywhere in history, deletes through the lookback,
the cursor moving only with committed writes, a no-change sync that costs little and writes
nothing. Real simulator over HTTP, real Dagster instance, Pay on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
import sqlalchemy as sa

from assignar_pipeline import changes
from assignar_pipeline.client import AssignarClient
from assignar_pipeline.connections import active_connections, secret_for
from assignar_pipeline.cursor import read_cursor
from assignar_pipeline.pay import tables as t
from assignar_pipeline.regions import endpoints_for
from assignar_pipeline.sync_settings import SettingsChange, change_settings
from tests.support.pipeline import (
    LAST_4_WEEKS,
    TODAY,
    assert_pay_matches_assignar,
    make_pipeline,
    pay_timesheets,
)
from tests.support.sync import connection_id, run_sync

TS = "timesheets-expanded"


@pytest.fixture
def instance(tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        yield instance


@pytest.fixture
def pipeline(pay_engine, simulator, instance, monkeypatch):
    return make_pipeline(pay_engine, simulator, instance, monkeypatch)


@pytest.fixture
def imported(pipeline):
    """The demo connection after its initial import of the last 4 weeks."""
    assert pipeline.materialize().success
    return pipeline


def _loaded(pipeline, demo: int, low, high) -> list[int]:
    """Approved timesheets that are live in Pay, with a work date in [low, high]."""
    return sorted(
        i
        for i, row in pay_timesheets(pipeline.engine, demo).items()
        if row.status != "void" and low <= row.work_date <= high
    )


def _partitions(result: dg.ExecuteInProcessResult, asset: str) -> set[str]:
    return {
        m.partition
        for m in result.asset_materializations_for_node("sync_assignar_changes")
        if m.asset_key == dg.AssetKey(asset)
    }


def _requests(engine, run_id: str) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.sync_log.c.entity, t.sync_log.c.api_requests).where(
                t.sync_log.c.run_id == run_id
            )
        ).all()
    return {entity: n for entity, n in rows}


def test_edit_anywhere_and_delete_in_lookback_reach_pay_through_the_sync(imported):
    """An edit to a 3-week-old timesheet and a deletion inside the lookback reach Pay through the
    sync job alone, each reported as a materialization of its date partition."""
    pipeline, sim = imported, imported.simulator.simulator
    demo = connection_id(pipeline.engine, "demo")
    old = _loaded(pipeline, demo, TODAY - timedelta(days=24), TODAY - timedelta(days=18))[0]
    recent = _loaded(pipeline, demo, TODAY - timedelta(days=2), TODAY)[0]
    old_date = pay_timesheets(pipeline.engine, demo)[old].work_date
    recent_date = pay_timesheets(pipeline.engine, demo)[recent].work_date
    sim.advance(10)
    sim.update(TS, old, {"total_time": "01:15"})
    sim.delete(TS, recent)

    result = run_sync(pipeline, ["demo"])

    assert result.success
    after = pay_timesheets(pipeline.engine, demo)
    assert after[old].payable_minutes == 75
    assert after[recent].status == "void"
    assert after[recent].void_reason == "deleted in Assignar"
    for asset in ("assignar_timesheets", "pay_timesheets"):
        assert {old_date.isoformat(), recent_date.isoformat()} <= _partitions(result, asset)
    assert_pay_matches_assignar(pipeline, demo, LAST_4_WEEKS)


def test_sync_with_nothing_changed_costs_one_request_per_entity_and_writes_nothing(imported):
    """Once caught up and with no lookback due, a sync asks one delta question per entity (plus
    its one token), changes no Pay, link or staging row and reports no materialization."""
    pipeline = imported
    assert run_sync(pipeline, ["demo"]).success  # the first sync catches up on orders ahead
    before = pipeline.checksums()

    result = run_sync(pipeline, ["demo"])

    assert result.success
    assert pipeline.checksums() == before
    assert not result.asset_materializations_for_node("sync_assignar_changes")
    requests = _requests(pipeline.engine, result.run_id)
    assert requests == {"timesheets": 1 + 1, "orders": 1}, "one token, then 1 per entity"


def test_a_due_lookback_adds_one_listing_per_entity(imported, monkeypatch):
    """When the lookback is due again, the same quiet sync also lists each entity's window."""
    pipeline = imported
    assert run_sync(pipeline, ["demo"]).success
    monkeypatch.setenv("PIPELINE_LOOKBACK_EVERY_HOURS", "0")
    result = run_sync(pipeline, ["demo"])
    assert result.success
    requests = _requests(pipeline.engine, result.run_id)
    assert requests == {"timesheets": 1 + 2, "orders": 2}, "one token, then 2 per entity"


@pytest.mark.parametrize("pay_engine", ["sqlite"], indirect=True)
def test_pay_stays_equal_to_assignar_while_simulated_hours_pass(imported, monkeypatch):
    """Hour after hour of submissions, approvals, edits, deletes and new records: after each
    sync, staging and Pay equal Assignar for the whole imported window."""
    pipeline, sim = imported, imported.simulator.simulator
    # Simulated hours pass in milliseconds: look back at every sync, as hours would make due.
    monkeypatch.setenv("PIPELINE_LOOKBACK_EVERY_HOURS", "0")
    # The simulator deletes duplicates up to 14 days old: the lookback must reach that far.
    change_settings(pipeline.engine, "demo", SettingsChange(lookback_days=15))
    demo = connection_id(pipeline.engine, "demo")
    window = (LAST_4_WEEKS[0], LAST_4_WEEKS[1] + timedelta(days=1))
    changed = 0
    for _ in range(4):
        changed += sum(sim.advance(90).values())
        result = run_sync(pipeline, ["demo"])
        assert result.success
        assert_pay_matches_assignar(pipeline, demo, window)
    assert changed > 20, "the simulated hours should have changed many records"


def _context(pipeline) -> changes.SyncContext:
    connection = active_connections(pipeline.engine, ["demo"])[0]
    client = AssignarClient(
        connection.client_id,
        secret_for(connection),
        connection.region,
        endpoints=endpoints_for(connection.region),
    )
    return changes.SyncContext(
        pipeline.engine, client, connection, "test-run", lambda: datetime.now(UTC)
    )


@pytest.mark.parametrize("pay_engine", ["sqlite"], indirect=True)
def test_cursor_moves_only_with_the_pages_that_committed(imported, monkeypatch):
    """A delta that dies on its third page leaves the cursor at the end of the second page's
    commit; the next sync applies the rest and then moves it to the newest change."""
    pipeline, sim = imported, imported.simulator.simulator
    demo = connection_id(pipeline.engine, "demo")
    ids = _loaded(pipeline, demo, TODAY - timedelta(days=25), TODAY - timedelta(days=8))[:6]
    base = sim.now + timedelta(minutes=5)
    stamps = {}
    for n, rid in enumerate(ids):
        stamp = (base + timedelta(minutes=n)).isoformat(timespec="milliseconds")
        stamps[rid] = stamp.replace("+00:00", "Z")
        sim.update(TS, rid, {"total_time": f"0{n + 1}:00", "modified_time": stamps[rid]})
    pages = 0
    real_stage_page = changes._stage_page

    def dies_on_third_page(*args, **kwargs):
        nonlocal pages
        pages += 1
        if pages == 3:
            raise RuntimeError("the Pay database went away")
        return real_stage_page(*args, **kwargs)

    monkeypatch.setattr(changes, "_stage_page", dies_on_third_page)
    ctx = _context(pipeline)
    with pytest.raises(RuntimeError):
        changes.sync_entity(ctx, "timesheets", lookback_days=0, page_size=2)
    with pipeline.engine.connect() as conn:
        cursor = read_cursor(conn, demo, "timesheets")
    staged = _staged_minutes(pipeline, demo, ids)
    committed = [i for n, i in enumerate(ids) if staged[i] == (n + 1) * 60]
    assert 0 < len(committed) < len(ids), "the delta should have died half-way"
    assert committed == ids[: len(committed)], "pages commit in modified_time order"
    assert cursor.modified_since == datetime.fromisoformat(stamps[committed[-1]])

    monkeypatch.setattr(changes, "_stage_page", real_stage_page)
    change = changes.sync_entity(_context(pipeline), "timesheets", lookback_days=0, page_size=2)
    assert change.error is None
    staged = _staged_minutes(pipeline, demo, ids)
    assert [staged[i] for i in ids] == [60, 120, 180, 240, 300, 360]
    with pipeline.engine.connect() as conn:
        assert read_cursor(conn, demo, "timesheets").modified_since == datetime.fromisoformat(
            stamps[ids[5]]
        )


def _staged_minutes(pipeline, demo: int, ids: list[int]) -> dict[int, int]:
    s = t.staging_timesheet
    with pipeline.engine.connect() as conn:
        return dict(
            conn.execute(
                sa.select(s.c.assignar_id, s.c.total_minutes).where(
                    s.c.connection_id == demo, s.c.assignar_id.in_(ids)
                )
            ).all()
        )


@pytest.mark.parametrize("pay_engine", ["sqlite"], indirect=True)
def test_a_cancelled_order_is_voided_and_a_new_worker_fetched_by_id(imported):
    """An order that leaves the confirmed statuses is voided in staging and Pay; a worker that
    a changed timesheet now names is fetched by id, without a full worker refresh."""
    pipeline, sim = imported, imported.simulator.simulator
    demo = connection_id(pipeline.engine, "demo")
    with pipeline.engine.connect() as conn:
        order = conn.execute(
            sa.select(t.pay_order.c.source_external_id).where(
                t.pay_order.c.source_connection_id == demo, t.pay_order.c.voided.is_(False)
            )
        ).scalar()
    sim.update("orders", order, {"status_id": 4})  # Cancelled
    worker = sim.insert(
        "users",
        {"first_name": "Nova", "last_name": "Fresh", "email": "nova.fresh@example.com",
         "employee_id": "E-9001", "active": True, "user_type_id": 2},
    )  # fmt: skip
    timesheet = _loaded(pipeline, demo, TODAY - timedelta(days=20), TODAY - timedelta(days=15))[0]
    sim.update(TS, timesheet, {"user_id": worker["id"]})

    result = run_sync(pipeline, ["demo"])

    assert result.success
    with pipeline.engine.connect() as conn:
        voided = conn.execute(
            sa.select(t.staging_order.c.voided_at).where(
                t.staging_order.c.connection_id == demo, t.staging_order.c.assignar_id == order
            )
        ).scalar()
        in_pay = conn.execute(
            sa.select(t.pay_order.c.voided).where(t.pay_order.c.source_external_id == order)
        ).scalar()
        staged_worker = conn.execute(
            sa.select(t.staging_worker.c.email).where(
                t.staging_worker.c.connection_id == demo,
                t.staging_worker.c.assignar_id == worker["id"],
            )
        ).scalar()
    assert voided is not None and in_pay is True
    assert staged_worker == "nova.fresh@example.com"
    assert "workers" in _requests(pipeline.engine, result.run_id), "the worker fetch is logged"

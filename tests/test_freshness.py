"""Freshness: each connection's Pay data, per synced entity, is no older than its sync frequency
plus the grace period; evaluated at chosen instants, and as the scheduled check job on a real
Dagster instance whose failure alerts the data engineers and whose recovery is told once."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pytest
import sqlalchemy as sa

from assignar_pipeline.definitions import defs
from assignar_pipeline.freshness import freshness, grace_from_env
from assignar_pipeline.pay import tables as t
from assignar_pipeline.sync_settings import SettingsError
from resources import PayDatabaseResource
from sensors.alerts import alert_on_checks
from tests.support.notify import Inbox, notify_resource, smtp_server
from tests.support.sync import add_connection

T0 = datetime(2025, 11, 14, 9, 0, tzinfo=UTC)
GRACE = timedelta(hours=2)


def _synced(engine, connection_id: int, at: datetime, entity: str = "timesheets") -> None:
    """A change-detection sync of `entity` that committed at `at`."""
    with engine.begin() as conn:
        conn.execute(t.sync_cursor.delete().where(t.sync_cursor.c.connection_id == connection_id))
        conn.execute(
            t.sync_cursor.insert().values(
                connection_id=connection_id, entity=entity, modified_since=at, delta_at=at,
                run_id="sync-run",
            )
        )  # fmt: skip


def _fetched(engine, connection_id: int, day: date, at: datetime) -> None:
    """A full fetch of one date's window (an initial or bulk import) that began at `at`."""
    with engine.begin() as conn:
        conn.execute(
            t.sync_state.insert().values(
                connection_id=connection_id, entity="timesheets", window_start=day,
                fetch_started_at=at, run_id="import-run",
            )
        )  # fmt: skip


def _by_key(engine, now: datetime) -> dict[str, object]:
    with engine.connect() as conn:
        return {f.connection_key: f for f in freshness(conn, now, GRACE)}


def test_data_older_than_its_frequency_plus_grace_is_stale(pay_engine):
    """Hourly data synced at 09:00 is fresh at 11:59 and stale at 12:01; daily data from an
    import's newest date (not a bulk import re-reading an old date) is stale after 26 hours; a
    connection never synced is stale 3 hours after it was made; one with auto-sync off is not
    checked."""
    hourly = add_connection(pay_engine, "hourly")
    daily = add_connection(pay_engine, "daily", sync_frequency="daily")
    add_connection(pay_engine, "never", created_at=T0 - timedelta(hours=5))
    add_connection(pay_engine, "off", auto_sync_timesheets=False)
    _synced(pay_engine, hourly, T0)
    _fetched(pay_engine, daily, date(2025, 11, 13), T0 - timedelta(hours=20))
    _fetched(pay_engine, daily, date(2024, 3, 1), T0 + timedelta(hours=5))  # history re-read

    before = _by_key(pay_engine, T0 + timedelta(hours=2, minutes=59))
    assert set(before) == {"hourly", "daily", "never"}
    assert not before["hourly"].stale and not before["daily"].stale
    assert before["never"].stale
    assert before["never"].describe() == (
        "timesheets never synced since the connection was made 7 h 59 min ago "
        "(hourly sync + 2 h grace)"
    )
    after = _by_key(pay_engine, T0 + timedelta(hours=3, minutes=1))
    assert after["hourly"].stale
    assert after["hourly"].describe() == (
        "timesheets 3 h 1 min old: last synced 2025-11-14 09:00 UTC (hourly sync + 2 h grace)"
    )
    assert not _by_key(pay_engine, T0 + timedelta(hours=5, minutes=59))["daily"].stale
    assert _by_key(pay_engine, T0 + timedelta(hours=6, minutes=1))["daily"].stale


def test_a_bad_grace_setting_says_what_to_give():
    """FRESHNESS_GRACE_HOURS that is not a number of hours is refused naming the variable."""
    with pytest.raises(SettingsError, match="FRESHNESS_GRACE_HOURS is 'two'"):
        grace_from_env({"FRESHNESS_GRACE_HOURS": "two"})
    assert grace_from_env({"FRESHNESS_GRACE_HOURS": "0.5"}) == timedelta(minutes=30)
    assert grace_from_env({}) == GRACE


@pytest.mark.parametrize("pay_engine", ["sqlite"], indirect=True)
def test_the_scheduled_freshness_check_alerts_a_stale_connection_and_its_recovery(
    pay_engine, tmp_path, monkeypatch
):
    """The `check_freshness` job (what the schedule launches) fails `data_fresh` on
    pay_timesheets naming the stale connection and its age, not the fresh one; the data
    engineers hear it once; once that connection syncs again, they hear it passes."""
    monkeypatch.setenv("ALERT_EMAILS", "data-eng@example.com")
    url = pay_engine.url.render_as_string(hide_password=False)
    fresh, stale = add_connection(pay_engine, "fresh"), add_connection(pay_engine, "stale")
    now = datetime.now(UTC)
    _synced(pay_engine, fresh, now - timedelta(minutes=20))
    _synced(pay_engine, stale, now - timedelta(hours=7))
    schedule = defs.resolve_schedule_def("freshness_checks")
    assert schedule.cron_schedule == "*/15 * * * *"
    job = defs.resolve_job_def(schedule.job_name)
    inbox = Inbox()
    server = smtp_server(inbox)
    server.start()
    try:
        with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:

            def run_and_tick(cursor):
                result = job.execute_in_process(
                    instance=instance, resources={"pay": PayDatabaseResource(url=url)}
                )
                assert result.success
                resources = {
                    "pay": PayDatabaseResource(url=url),
                    "notify": notify_resource(server),
                }
                with dg.build_sensor_context(
                    instance=instance, cursor=cursor, resources=resources
                ) as context:
                    return result, alert_on_checks(context).cursor

            result, cursor = run_and_tick(None)
            check = next(
                e for e in result.get_asset_check_evaluations()
                if e.asset_key == dg.AssetKey("pay_timesheets")
            )  # fmt: skip
            assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
            assert check.description.startswith("stale: timesheets 7 h old")
            assert "fresh" not in check.description.replace("stale", "")
            result, cursor = run_and_tick(cursor)  # still stale: no second message
            _synced(pay_engine, stale, datetime.now(UTC))
            run_and_tick(cursor)
    finally:
        server.stop()

    subjects = [m["Subject"] for m in inbox.to("data-eng@example.com")]
    assert subjects == [
        "[ERROR] Check failed: pay_timesheets data_fresh (stale)",
        "[OK] Check passes again: pay_timesheets data_fresh (stale)",
    ]
    body = inbox.to("data-eng@example.com")[0].get_content()
    assert "stale: failing" in body and "timesheets 7 h old: last synced" in body
    assert "/assets/pay_timesheets?view=checks&checkDetail=data_fresh" in body
    with pay_engine.connect() as conn:
        assert (
            conn.execute(
                sa.select(t.alert_state.c.state).where(
                    t.alert_state.c.source == "pay_timesheets:data_fresh",
                    t.alert_state.c.subject == "fresh",
                )
            ).scalar()
            == "passing"
        )

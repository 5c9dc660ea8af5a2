"""When connections sync: due-ness at chosen instants across time zones and daylight-saving
changes (pure), and the hourly schedule evaluated against a real Pay database, its run requests
inspected."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from assignar_pipeline.schedule import Cadence, batches, is_due, next_due
from assignar_pipeline.sync_settings import set_batch_size
from resources import PayDatabaseResource
from schedules.sync import hourly_sync
from tests.support.sync import add_connection

HOUR = timedelta(hours=1)


def _ticks(first: date, days: int) -> list[datetime]:
    start = datetime.combine(first, datetime.min.time(), tzinfo=UTC) - timedelta(days=1)
    return [start + HOUR * n for n in range(24 * (days + 2))]


def _syncs_per_local_day(cadence: Cadence, first: date, days: int) -> Counter[date]:
    zone = ZoneInfo(cadence.timezone)
    return Counter(
        (tick - timedelta(minutes=1)).astimezone(zone).date()  # the hour the tick closes
        for tick in _ticks(first, days)
        if is_due(cadence, tick)
    )


@pytest.mark.parametrize(
    ("zone", "at", "around"),
    [
        ("Australia/Sydney", "02:30", date(2025, 10, 5)),  # 02:00 → 03:00: 02:30 never happens
        ("Australia/Sydney", "02:30", date(2025, 4, 6)),  # 03:00 → 02:00: 02:30 happens twice
        ("Australia/Sydney", "06:00", date(2025, 10, 5)),
        ("America/Denver", "02:00", date(2025, 3, 9)),  # the gap starts exactly at 02:00
        ("America/Denver", "01:30", date(2025, 11, 2)),  # 01:30 happens twice
        ("Australia/Adelaide", "09:00", date(2025, 10, 5)),  # half-hour offset, and DST
        ("Europe/London", "01:15", date(2025, 3, 30)),
        ("Pacific/Chatham", "02:45", date(2025, 9, 28)),  # +12:45 → +13:45 at 02:45
    ],
)
def test_daily_sync_happens_once_per_local_day_through_dst_changes(zone, at, around):
    """A daily connection syncs exactly once on every local date around a DST change, at its
    preferred time rounded up to the tick, even when that time is skipped or repeated."""
    cadence = Cadence("daily", at, 1, zone)
    first = around - timedelta(days=2)
    per_day = _syncs_per_local_day(cadence, first, 5)
    for offset in range(5):
        day = first + timedelta(days=offset)
        assert per_day[day] == 1, f"{day}: {per_day[day]} syncs"


def test_a_skipped_preferred_time_syncs_right_after_the_gap_and_a_repeated_one_on_its_first_pass():
    """Sydney 02:30 on the spring-forward night syncs at the first tick after 03:00 local; on the
    fall-back night at the first pass of 02:30, not again an hour later."""
    cadence = Cadence("daily", "02:30", 1, "Australia/Sydney")
    sydney = ZoneInfo("Australia/Sydney")
    spring = [t for t in _ticks(date(2025, 10, 5), 1) if is_due(cadence, t)]
    assert datetime(2025, 10, 4, 17, tzinfo=UTC) in spring  # 04:00 AEDT, the gap just passed
    autumn = [t for t in _ticks(date(2025, 4, 6), 1) if is_due(cadence, t)]
    assert datetime(2025, 4, 5, 16, tzinfo=UTC) in autumn  # 02:00 AEST, after 02:30 AEDT
    assert datetime(2025, 4, 5, 17, tzinfo=UTC) not in autumn
    assert all(t.astimezone(sydney).hour in (2, 3, 4) for t in spring + autumn)


def test_weekly_sync_happens_once_a_week_on_its_weekday():
    """A weekly connection (Monday 07:00 Denver) syncs once per week, on Monday local time,
    across the November DST change."""
    cadence = Cadence("weekly", "07:00", 1, "America/Denver")
    due = [t for t in _ticks(date(2025, 10, 20), 28) if is_due(cadence, t)]
    local = [t.astimezone(ZoneInfo("America/Denver")) for t in due]
    assert [d.date() for d in local] == [date(2025, 10, 20) + timedelta(weeks=w) for w in range(5)]
    assert all(d.hour == 7 and d.isoweekday() == 1 for d in local)


def test_hourly_sync_is_due_at_every_tick_and_next_due_is_the_first_due_tick():
    """Hourly is every tick; for every cadence, next_due is exactly the first due tick after."""
    cadences = [
        Cadence("hourly", timezone="Asia/Kolkata"),
        Cadence("daily", "23:30", 1, "Asia/Kolkata"),
        Cadence("daily", "02:30", 1, "Australia/Sydney"),
        Cadence("weekly", "18:00", 5, "America/Denver"),
    ]
    ticks = _ticks(date(2025, 10, 1), 40)
    for cadence in cadences:
        for after in ticks[: -24 * 8 : 7]:  # leave a week after each probe
            probe = after + timedelta(minutes=17)
            expected = next(t for t in ticks if t > probe and is_due(cadence, t))
            assert next_due(cadence, probe) == expected, (cadence, probe)
    assert all(is_due(cadences[0], t) for t in ticks)


def test_batches_are_ceil_of_due_over_size():
    """Due connections are split into ceil(due / size) batches, none over size."""
    for due in (0, 1, 9, 10, 11, 200):
        for size in (1, 7, 10):
            split = batches(list(range(due)), size)
            assert len(split) == -(-due // size)
            assert all(0 < len(b) <= size for b in split)
            assert [n for batch in split for n in batch] == list(range(due))


def _evaluate(engine, tick: datetime, instance: dg.DagsterInstance) -> list[dg.RunRequest]:
    url = engine.url.render_as_string(hide_password=False)
    with dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=tick,
        resources={"pay": PayDatabaseResource(url=url)},
    ) as context:
        result = hourly_sync(context)
    return [] if isinstance(result, dg.SkipReason) else list(result)


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def _keys(requests: list[dg.RunRequest]) -> list[str]:
    return [
        key
        for request in requests
        for key in request.run_config["resources"]["scope"]["config"]["connections"]
    ]


def test_schedule_launches_the_due_connections_in_batches(pay_engine, instance):
    """At 20:00 UTC (07:00 next day in Sydney): the hourly connections and the Sydney 07:00
    daily one are due, the Denver weekly, a paused and a disconnected one are not; batches of 2."""
    add_connection(pay_engine, "hourly-a", "UTC")
    add_connection(pay_engine, "hourly-b", "America/Denver")
    add_connection(pay_engine, "hourly-c", "Asia/Kolkata")
    add_connection(pay_engine, "sydney-7am", sync_frequency="daily", sync_time="07:00")
    add_connection(pay_engine, "sydney-8am", sync_frequency="daily", sync_time="08:00")
    add_connection(pay_engine, "denver-weekly", "America/Denver", sync_frequency="weekly")
    add_connection(pay_engine, "paused", auto_sync_timesheets=False)
    add_connection(pay_engine, "gone", status="disconnected")
    set_batch_size(pay_engine, 2)

    tick = datetime(2025, 11, 11, 20, tzinfo=UTC)
    requests = _evaluate(pay_engine, tick, instance)

    assert sorted(_keys(requests)) == ["hourly-a", "hourly-b", "hourly-c", "sydney-7am"]
    assert len(requests) == 2
    assert all(len(r.run_config["resources"]["scope"]["config"]["connections"]) <= 2
               for r in requests)  # fmt: skip
    assert all(r.tags["assignar/operation"] == "sync" for r in requests)
    assert len({r.run_key for r in requests}) == 2
    assert _evaluate(pay_engine, tick, instance) == requests  # same run keys: no double launch


@pytest.mark.parametrize("pay_engine", ["sqlite"], indirect=True)
def test_schedule_syncs_a_daily_connection_once_per_night_over_a_dst_weekend(pay_engine, instance):
    """The real schedule, evaluated at every night tick (00:00-06:00 Sydney) of the spring-forward
    weekend, launches the 02:30 daily connection once per night and the hourly one every tick."""
    add_connection(pay_engine, "night-owl", sync_frequency="daily", sync_time="02:30")
    add_connection(pay_engine, "always", "UTC")
    sydney = ZoneInfo("Australia/Sydney")
    per_night: Counter[date] = Counter()
    ticks = [t for t in _ticks(date(2025, 10, 4), 3) if 0 < t.astimezone(sydney).hour <= 6]
    for tick in ticks:
        keys = _keys(_evaluate(pay_engine, tick, instance))
        assert "always" in keys
        if "night-owl" in keys:
            per_night[(tick - HOUR).astimezone(sydney).date()] += 1
    assert per_night == Counter({date(2025, 10, d): 1 for d in range(4, 9)})  # 5 Oct: the gap

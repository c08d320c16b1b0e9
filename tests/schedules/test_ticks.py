"""Which instants a schedule ticks at, and what one step fires: the pure rules, DST included.

New York's 2026 changes: on 8 March 02:00 EST becomes 03:00 EDT (02:xx does
not exist); on 1 November 02:00 EDT becomes 01:00 EST (01:xx happens twice).
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from jobqueue.domain import InvalidJob, JobTemplate, Schedule, plan, ticks_after
from jobqueue.domain._schedules import MAX_COUNTED_MISSES, validate_schedule
from jobqueue_server._cron import CronsimParser

CRON = CronsimParser()
NEW_YORK = "America/New_York"


def utc(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


def cron(expression: str, time_zone: str = NEW_YORK, **state: int) -> Schedule:
    return Schedule(
        id="s",
        name="s",
        template=JobTemplate(type="t"),
        cron=expression,
        time_zone=time_zone,
        **state,  # type: ignore[arg-type]
    )


def first(schedule: Schedule, after: str, n: int) -> list[str]:
    return [iso(t) for t in itertools.islice(ticks_after(schedule, utc(after), CRON), n)]


def test_a_daily_time_follows_its_zone_across_the_year() -> None:
    # 09:00 in New York is 14:00 UTC in winter, 13:00 in summer.
    assert first(cron("0 9 * * *"), "2026-03-06 00:00", 3) == [
        "2026-03-06 14:00",
        "2026-03-07 14:00",
        "2026-03-08 13:00",
    ]


def test_a_time_the_spring_gap_skips_fires_once_at_the_shifted_instant() -> None:
    # 02:30 does not exist on 8 March: it fires once, at 03:30 EDT (07:30 UTC).
    assert first(cron("30 2 * * *"), "2026-03-07 12:00", 3) == [
        "2026-03-08 07:30",
        "2026-03-09 06:30",
        "2026-03-10 06:30",
    ]


def test_a_repeated_time_in_the_autumn_fires_once_at_its_first_occurrence() -> None:
    # 01:30 happens at 05:30 UTC (EDT) and again at 06:30 UTC (EST): once, the first.
    assert first(cron("30 1 * * *"), "2026-10-31 12:00", 2) == [
        "2026-11-01 05:30",
        "2026-11-02 06:30",
    ]


def test_frequent_ticks_never_repeat_an_instant_through_the_spring_gap() -> None:
    # 02:00 and 02:30 map to 03:00 and 03:30 EDT, which are ticks of their own: once each.
    assert first(cron("*/30 * * * *"), "2026-03-08 05:45", 5) == [
        "2026-03-08 06:00",  # 01:00 EST
        "2026-03-08 06:30",  # 01:30 EST
        "2026-03-08 07:00",  # 02:00, shifted to 03:00 EDT
        "2026-03-08 07:30",  # 02:30, shifted to 03:30 EDT
        "2026-03-08 08:00",  # 04:00 EDT
    ]


def test_frequent_ticks_fire_the_repeated_hour_once() -> None:
    assert first(cron("*/30 * * * *"), "2026-11-01 04:45", 4) == [
        "2026-11-01 05:00",  # 01:00 EDT
        "2026-11-01 05:30",  # 01:30 EDT
        "2026-11-01 07:00",  # 02:00 EST: 01:00 and 01:30 EST are not fired again
        "2026-11-01 07:30",
    ]


def test_ticks_resume_correctly_from_inside_the_repeated_hour() -> None:
    # A server that last handled a tick at 01:15 EST (the second pass) goes on at 02:00 EST.
    assert first(cron("*/30 * * * *"), "2026-11-01 06:15", 1) == ["2026-11-01 07:00"]


def test_an_interval_ticks_from_its_anchor_in_real_time() -> None:
    schedule = Schedule(
        id="s", name="s", template=JobTemplate(type="t"), interval_ms=1_000, anchor_ms=500
    )
    assert list(itertools.islice(ticks_after(schedule, 500, CRON), 3)) == [1_500, 2_500, 3_500]
    assert next(ticks_after(schedule, 2_600, CRON)) == 3_500


def test_a_step_fires_the_first_tick_within_the_window_and_counts_older_ones() -> None:
    schedule = Schedule(
        id="s",
        name="s",
        template=JobTemplate(type="t"),
        interval_ms=1_000,
        anchor_ms=0,
        catchup_window_ms=2_000,
    )
    step = plan(schedule, 10_500, CRON)
    # Ticks 1..10 s are due; 9 and 10 s lie within 2 s of now: 1..8 s are missed.
    assert (step.tick_ms, step.missed, step.next_tick_ms) == (9_000, 8, 10_000)
    later = plan(
        Schedule(**{**_fields(schedule), "last_tick_ms": 9_000}),  # type: ignore[arg-type]
        10_500,
        CRON,
    )
    assert (later.tick_ms, later.missed, later.next_tick_ms) == (10_000, 0, 11_000)
    idle = plan(Schedule(**{**_fields(schedule), "last_tick_ms": 10_000}), 10_500, CRON)  # type: ignore[arg-type]
    assert (idle.tick_ms, idle.last_tick_ms, idle.next_tick_ms) == (None, 10_000, 11_000)


def test_missed_cron_ticks_are_counted_and_the_count_is_bounded() -> None:
    schedule = cron("* * * * *", "UTC", anchor_ms=utc("2026-01-01 00:00"))
    step = plan(schedule, utc("2026-01-01 00:10") + 30_000, CRON)
    assert (iso(step.tick_ms or 0), step.missed) == ("2026-01-01 00:10", 9)
    year = plan(schedule, utc("2027-01-01 00:00"), CRON)
    assert year.tick_ms is None
    assert year.missed == MAX_COUNTED_MISSES
    assert year.next_tick_ms is not None  # the next step goes on from there


def test_an_expression_that_never_matches_has_no_next_tick() -> None:
    # The 1st or 21st of a month that is also its last Monday: never (cronsim gives up).
    step = plan(
        cron("* * */20 * 1L", "UTC", anchor_ms=utc("2026-01-01 00:00")),
        utc("2026-06-01 00:00"),
        CRON,
    )
    assert (step.tick_ms, step.next_tick_ms) == (None, None)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"cron": "not cron"}, "cron"),
        ({"cron": None}, "cron"),
        ({"interval_ms": 1_000}, "cron"),
        ({"time_zone": "Nowhere/Else"}, "time_zone"),
        ({"time_zone": "../etc/passwd"}, "time_zone"),
        ({"catchup_window_ms": 0}, "catchup_window_ms"),
        ({"name": ""}, "name"),
        # A sixth field, which cronsim reads as seconds: fired every second.
        ({"cron": "* * * * * *"}, "cron"),
        ({"cron": "* * * *"}, "cron"),
        # Host files, not places: each server would read its own zone.
        ({"time_zone": "localtime"}, "time_zone"),
        ({"time_zone": "posix/Europe/Paris"}, "time_zone"),
        ({"time_zone": "Factory"}, "time_zone"),
        ({"name": "a\nb"}, "name"),
        ({"name": "\x1b[31mred"}, "name"),
    ],
)
def test_invalid_schedules_name_the_field(changes: dict[str, object], field: str) -> None:
    schedule = Schedule(**{**_fields(cron("* * * * *")), **changes})  # type: ignore[arg-type]
    with pytest.raises(InvalidJob) as raised:
        validate_schedule(schedule, CRON)
    assert raised.value.field == field


def _fields(schedule: Schedule) -> dict[str, object]:
    return {name: getattr(schedule, name) for name in Schedule.__dataclass_fields__}


@pytest.mark.parametrize("zone_name", ["UTC", "Europe/Paris", "America/Argentina/Buenos_Aires"])
def test_iana_zones_are_taken(zone_name: str) -> None:
    validate_schedule(Schedule(**{**_fields(cron("30 2 * * *")), "time_zone": zone_name}), CRON)  # type: ignore[arg-type]

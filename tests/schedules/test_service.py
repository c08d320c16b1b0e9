"""The ScheduleService over the memory store on a manual clock: cron ticks, DST days, exact times.

The contract tests (tests/contract/test_schedules.py) run every store on
real time; here the clock moves by exactly what each case needs, so a whole
DST day passes in a test.
"""

from __future__ import annotations

from datetime import UTC, datetime

from jobqueue.domain import (
    JobTemplate,
    ManualClock,
    OverlapPolicy,
    ScheduleService,
    UuidV7Generator,
    tick_key,
)
from jobqueue.memory import MemoryJobStore, MemoryScheduleStore
from jobqueue_server._cron import CronsimParser


def utc(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def service_at(start: str) -> tuple[ScheduleService, ManualClock]:
    clock = ManualClock(utc(start))
    jobs = MemoryJobStore(clock=clock)
    service = ScheduleService(
        MemoryScheduleStore(jobs, clock=clock),
        jobs,
        cron=CronsimParser(),
        clock=clock,
        ids=UuidV7Generator(),
    )
    return service, clock


async def test_a_cron_schedule_fires_at_each_matching_minute_once() -> None:
    service, clock = service_at("2026-01-01 00:00:30")
    made = await service.create(
        name="m", template=JobTemplate(type="t"), cron="* * * * *", overlap=OverlapPolicy.ALLOW_ALL
    )
    assert await service.fire_due() == []  # planned: the next tick is 00:01
    clock.set(utc("2026-01-01 00:00:59.999"))
    assert await service.fire_due() == []
    clock.set(utc("2026-01-01 00:01:00"))
    [job] = await service.fire_due()
    assert job.idempotency_key == tick_key(made.id, utc("2026-01-01 00:01:00"))
    assert await service.fire_due() == []  # once, however often asked
    clock.set(utc("2026-01-01 00:03:10"))
    fired = await service.fire_due()  # 00:02 is 70 s late, past the 60 s window: missed
    assert [j.idempotency_key for j in fired] == [tick_key(made.id, utc("2026-01-01 00:03:00"))]
    after = await service.get(made.id)
    assert (after.fired, after.missed) == (2, 1)


async def test_spring_forward_fires_the_skipped_time_once_at_its_shifted_instant() -> None:
    service, clock = service_at("2026-03-07 12:00")
    made = await service.create(
        name="n",
        template=JobTemplate(type="t"),
        cron="30 2 * * *",
        time_zone="America/New_York",
        overlap=OverlapPolicy.ALLOW_ALL,
    )
    await service.fire_due()
    assert (await service.get(made.id)).next_tick_ms == utc("2026-03-08 07:30")  # 03:30 EDT
    clock.set(utc("2026-03-08 07:29:59"))
    assert await service.fire_due() == []
    clock.set(utc("2026-03-08 07:30"))
    assert len(await service.fire_due()) == 1
    clock.set(utc("2026-03-08 08:30"))  # 04:30 EDT: the 02:30 of that day fired once
    assert await service.fire_due() == []
    assert (await service.get(made.id)).next_tick_ms == utc("2026-03-09 06:30")


async def test_new_york_fall_back_day_fires_the_repeated_time_once() -> None:
    service, clock = service_at("2026-10-31 12:00")
    made = await service.create(
        name="n",
        template=JobTemplate(type="t"),
        cron="30 1 * * *",
        time_zone="America/New_York",
        overlap=OverlapPolicy.ALLOW_ALL,
    )
    await service.fire_due()
    clock.set(utc("2026-11-01 05:30"))  # 01:30 EDT
    assert len(await service.fire_due()) == 1
    clock.set(utc("2026-11-01 06:30"))  # 01:30 EST, the same wall time again
    assert await service.fire_due() == []
    after = await service.get(made.id)
    assert (after.fired, after.next_tick_ms) == (1, utc("2026-11-02 06:30"))

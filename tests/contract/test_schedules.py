"""Recurring schedules, one contract on every store (issue 15, item 4).

Each test builds a ScheduleService over the backend's JobStore and its
ScheduleStore. Time moves through the Passage: exactly on the memory store's
ManualClock, really on Redis (whose TIME every schedule script reads), so
the Redis variants assert only what real elapsed time guarantees.
"""

from __future__ import annotations

import asyncio

import pytest

from jobqueue.domain import (
    Advance,
    InvalidJob,
    JobStatus,
    JobStore,
    JobTemplate,
    ManualClock,
    Outcome,
    OutcomeKind,
    OverlapPolicy,
    Schedule,
    ScheduleNotFound,
    ScheduleService,
    ScheduleStore,
    SystemClock,
    UuidV7Generator,
    tick_key,
)
from jobqueue.memory import MemoryJobStore, MemoryScheduleStore
from jobqueue.redis import RedisJobStore, RedisScheduleStore
from jobqueue_server._cron import CronsimParser
from tests.contract.conftest import Passage

SECOND = 1_000


@pytest.fixture
def schedule_store(store: JobStore, clock: ManualClock) -> ScheduleStore:
    if isinstance(store, MemoryJobStore):
        return MemoryScheduleStore(store, clock=clock)
    assert isinstance(store, RedisJobStore)
    return RedisScheduleStore(store)


def service(store: JobStore, schedules: ScheduleStore, clock: ManualClock) -> ScheduleService:
    """A server's service; the memory store's shares the test's clock."""
    own = clock if isinstance(store, MemoryJobStore) else SystemClock()
    return ScheduleService(schedules, store, cron=CronsimParser(), clock=own, ids=UuidV7Generator())


@pytest.fixture
def schedules(
    store: JobStore, schedule_store: ScheduleStore, clock: ManualClock
) -> ScheduleService:
    return service(store, schedule_store, clock)


async def every_second(
    schedules: ScheduleService, overlap: OverlapPolicy = OverlapPolicy.ALLOW_ALL, **options: int
) -> Schedule:
    return await schedules.create(
        name="tick",
        template=JobTemplate(type="email", payload=b"{}", max_attempts=3),
        interval_ms=SECOND,
        overlap=overlap,
        **options,  # type: ignore[arg-type]
    )


async def test_create_get_list_delete(schedules: ScheduleService) -> None:
    made = await schedules.create(
        name="nightly",
        template=JobTemplate(type="report", payload=b"x", headers={"team": "ops"}),
        cron="30 2 * * *",
        time_zone="America/New_York",
        overlap=OverlapPolicy.BUFFER_ONE,
    )
    assert made.created_at > 0
    assert made.anchor_ms == made.created_at
    assert (made.version, made.last_tick_ms, made.paused) == (0, None, False)
    got = await schedules.get(made.id)
    assert got == made
    assert got.template.headers == {"team": "ops"}
    assert [s.id for s in await schedules.list_schedules()] == [made.id]
    await schedules.delete(made.id)
    assert await schedules.list_schedules() == []
    with pytest.raises(ScheduleNotFound):
        await schedules.get(made.id)
    with pytest.raises(ScheduleNotFound):
        await schedules.delete(made.id)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"cron": "61 * * * *"}, "cron"),
        ({"cron": "* * * * *", "interval_ms": 1_000}, "cron"),
        ({}, "cron"),
        ({"interval_ms": 999}, "interval_ms"),
        ({"cron": "* * * * *", "time_zone": "Mars/Olympus"}, "time_zone"),
        ({"cron": "* * * * *", "catchup_window_ms": 10}, "catchup_window_ms"),
    ],
)
async def test_bad_input_is_refused_and_stores_nothing(
    schedules: ScheduleService, options: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidJob) as raised:
        await schedules.create(name="bad", template=JobTemplate(type="email"), **options)  # type: ignore[arg-type]
    assert raised.value.field == field
    assert await schedules.list_schedules() == []


async def test_racing_servers_fire_each_tick_once(
    store: JobStore, schedule_store: ScheduleStore, clock: ManualClock, passage: Passage
) -> None:
    servers = [service(store, schedule_store, clock) for _ in range(4)]
    made = await every_second(servers[0])
    fired = []
    for _ in range(3):
        await passage.advance(SECOND)
        for jobs in await asyncio.gather(*(server.fire_due() for server in servers)):
            fired += jobs
    ticks = sorted(
        int(job.idempotency_key.rsplit(":", 1)[1]) for job in fired if job.idempotency_key
    )
    assert len(ticks) == len(fired) >= 3
    assert ticks == [made.anchor_ms + k * SECOND for k in range(1, len(ticks) + 1)]
    for job in fired:
        assert await store.get(job.id) is not None
    after = await servers[0].get(made.id)
    assert after.fired == len(fired)
    assert after.next_tick_ms == ticks[-1] + SECOND


async def test_skip_holds_a_tick_back_while_the_previous_job_runs(
    store: JobStore, schedules: ScheduleService, passage: Passage
) -> None:
    made = await every_second(schedules, OverlapPolicy.SKIP, catchup_window_ms=60_000)
    await passage.advance(SECOND)
    [first] = await schedules.fire_due()
    (lease,) = await store.claim(["email"], limit=1, lease_ms=60_000)
    await passage.advance(SECOND)
    assert await schedules.fire_due() == []
    assert (await schedules.get(made.id)).skipped_overlap >= 1
    await store.settle([Outcome(job_id=first.id, token=lease.token, kind=OutcomeKind.COMPLETE)])
    await passage.advance(SECOND)
    [second] = await schedules.fire_due()
    assert second.id != first.id
    assert second.idempotency_key != first.idempotency_key


async def test_buffer_one_lets_one_job_wait_behind_a_running_one(
    store: JobStore, schedules: ScheduleService, passage: Passage
) -> None:
    made = await every_second(schedules, OverlapPolicy.BUFFER_ONE, catchup_window_ms=60_000)
    await passage.advance(SECOND)
    assert len(await schedules.fire_due()) == 1
    await store.claim(["email"], limit=1, lease_ms=60_000)
    await passage.advance(SECOND)
    [buffered] = await schedules.fire_due()  # the first runs: one may wait
    await passage.advance(SECOND)
    assert await schedules.fire_due() == []  # one waits already
    assert (await store.get(buffered.id)).status is JobStatus.PENDING  # type: ignore[union-attr]
    assert (await schedules.get(made.id)).skipped_overlap >= 1


async def test_ticks_older_than_the_catchup_window_are_counted_not_fired(
    schedules: ScheduleService, passage: Passage
) -> None:
    made = await every_second(schedules, catchup_window_ms=SECOND)
    await passage.advance(3 * SECOND + SECOND // 2)
    fired = await schedules.fire_due()
    after = await schedules.get(made.id)
    # Ticks at +1 s, +2 s, +3 s (and perhaps +4 s on a slow Redis): only those
    # within the last second fire, the older ones are missed.
    assert 1 <= len(fired) <= 2
    assert after.missed >= 2
    assert after.missed + after.fired == (after.last_tick_ms - made.anchor_ms) // SECOND  # type: ignore[operator]


async def test_pause_stops_ticks_and_resume_does_not_replay_them(
    schedules: ScheduleService, passage: Passage
) -> None:
    made = await every_second(schedules, catchup_window_ms=60_000)
    paused = await schedules.pause(made.id)
    assert paused.paused
    await passage.advance(2 * SECOND)
    assert await schedules.fire_due() == []
    resumed = await schedules.resume(made.id)
    assert not resumed.paused
    assert resumed.anchor_ms >= made.anchor_ms + 2 * SECOND
    assert await schedules.fire_due() == []  # re-anchored: the paused ticks are gone
    await passage.advance(SECOND)
    [job] = await schedules.fire_due()
    assert job.idempotency_key == tick_key(made.id, resumed.anchor_ms + SECOND)
    with pytest.raises(ScheduleNotFound):
        await schedules.pause("0190f0f0-0000-7000-8000-000000000000")


async def test_trigger_enqueues_now_whatever_the_policy(
    store: JobStore, schedules: ScheduleService
) -> None:
    made = await every_second(schedules, OverlapPolicy.SKIP)
    await schedules.pause(made.id)
    first = await schedules.trigger(made.id)
    second = await schedules.trigger(made.id)
    assert first.id != second.id
    for job in (first, second):
        stored = await store.get(job.id)
        assert stored is not None
        assert (stored.type, stored.payload, stored.max_attempts) == ("email", b"{}", 3)
    with pytest.raises(ScheduleNotFound):
        await schedules.trigger("0190f0f0-0000-7000-8000-000000000000")


async def test_a_step_applies_once_and_never_before_its_tick_by_the_stores_clock(
    store: JobStore, schedule_store: ScheduleStore, schedules: ScheduleService, passage: Passage
) -> None:
    made = await every_second(schedules)
    now = await passage.now_ms()
    early = await schedule_store.advance(
        made.id,
        version=made.version,
        tick_ms=now + 600_000,  # a host whose clock runs ten minutes ahead
        last_tick_ms=now + 600_000,
        next_tick_ms=now + 601_000,
        missed=0,
        job=None,
    )
    assert early == Advance(applied=False)

    async def plan_ahead() -> bool:
        result = await schedule_store.advance(
            made.id,
            version=made.version,
            tick_ms=None,
            last_tick_ms=None,
            next_tick_ms=now + 5_000,
            missed=0,
            job=None,
        )
        return result.applied

    assert await plan_ahead()
    # The same step planned from the same version by a second server changes nothing.
    assert not await plan_ahead()
    after = await schedules.get(made.id)
    assert (after.version, after.next_tick_ms, after.fired) == (made.version + 1, now + 5_000, 0)
    assert (await store.stats()).total.pending == 0  # no tick, no job


async def test_fired_and_triggered_jobs_carry_the_templates_headers(
    store: JobStore, schedules: ScheduleService, passage: Passage
) -> None:
    headers = {"traceparent": "00-aa", "team": "ops"}
    made = await schedules.create(
        name="traced",
        template=JobTemplate(type="traced", payload=b"x", headers=headers),
        interval_ms=SECOND,
        catchup_window_ms=60_000,
    )
    await passage.advance(SECOND)
    fired = await schedules.fire_due()
    assert fired
    triggered = await schedules.trigger(made.id)
    for job in [*fired, triggered]:
        assert job.headers == headers
        stored = await store.get(job.id)
        assert stored is not None
        assert stored.headers == headers


@pytest.mark.parametrize(
    "headers",
    [{"bad key": "v"}, {"": "v"}, {f"k{i}": "v" for i in range(33)}, {"k": "v" * 1_025}],
)
async def test_template_headers_follow_the_jobs_rule(
    schedules: ScheduleService, headers: dict[str, str]
) -> None:
    with pytest.raises(InvalidJob) as raised:
        await schedules.create(
            name="bad",
            template=JobTemplate(type="email", headers=headers),
            interval_ms=SECOND,
        )
    assert raised.value.field == "headers"
    assert await schedules.list_schedules() == []

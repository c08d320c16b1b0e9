"""Schedules' idempotency keys and their jobs' priority, one contract on every store.

A retried CreateSchedule or TriggerSchedule (its reply lost) carries the key of
the first attempt and must answer what that attempt did, changing nothing; a
template's priority is its jobs' priority, fired or triggered.
"""

from __future__ import annotations

import pytest

from jobqueue.domain import (
    SCHEDULE_KEY_WINDOW_MS,
    InvalidJob,
    JobStore,
    JobTemplate,
    ManualClock,
    Schedule,
    ScheduleService,
    ScheduleStore,
    trigger_key,
)
from jobqueue.memory import MemoryJobStore, MemoryScheduleStore
from jobqueue.redis import RedisJobStore, RedisScheduleStore
from tests.contract.conftest import MakeJob, Passage
from tests.contract.test_schedules import SECOND, service


@pytest.fixture
def schedule_store(store: JobStore, clock: ManualClock) -> ScheduleStore:
    if isinstance(store, MemoryJobStore):
        return MemoryScheduleStore(store, clock=clock)
    assert isinstance(store, RedisJobStore)
    return RedisScheduleStore(store)


@pytest.fixture
def schedules(
    store: JobStore, schedule_store: ScheduleStore, clock: ManualClock
) -> ScheduleService:
    return service(store, schedule_store, clock)


async def create(
    schedules: ScheduleService, key: str | None, job_type: str = "email", *, paused: bool = False
) -> Schedule:
    return await schedules.create(
        name="tick",
        template=JobTemplate(type=job_type, payload=b"{}"),
        interval_ms=60 * SECOND,
        idempotency_key=key,
        paused=paused,
    )


async def test_a_repeated_create_with_its_key_answers_the_first_and_stores_nothing(
    schedules: ScheduleService,
) -> None:
    first = await create(schedules, "k-1")
    again = await create(schedules, "k-1", paused=True)  # another body: still the first's
    assert again == first
    assert [s.id for s in await schedules.list_schedules()] == [first.id]
    other = await create(schedules, "k-2")
    unkeyed = await create(schedules, None)
    assert len({first.id, other.id, unkeyed.id}) == 3
    assert len(await schedules.list_schedules()) == 3


async def test_create_keys_are_per_job_type(schedules: ScheduleService) -> None:
    email = await create(schedules, "same", "email")
    report = await create(schedules, "same", "report")
    assert email.id != report.id
    assert len(await schedules.list_schedules()) == 2


async def test_deleting_a_schedule_forgets_its_key(schedules: ScheduleService) -> None:
    first = await create(schedules, "k")
    await schedules.delete(first.id)
    second = await create(schedules, "k")
    assert second.id != first.id
    assert [s.id for s in await schedules.list_schedules()] == [second.id]


async def test_a_create_key_lapses_after_its_window(
    store: JobStore, schedules: ScheduleService, clock: ManualClock
) -> None:
    if not isinstance(store, MemoryJobStore):
        pytest.skip("a day of the store's clock passes only on the manual clock")
    first = await create(schedules, "k")
    clock.advance(SCHEDULE_KEY_WINDOW_MS - 1)
    assert (await create(schedules, "k")).id == first.id
    clock.advance(1)
    assert (await create(schedules, "k")).id != first.id


@pytest.mark.parametrize("key", ["", "x" * 257, "bad\x00key"])
async def test_a_bad_create_key_is_refused_and_stores_nothing(
    schedules: ScheduleService, key: str
) -> None:
    with pytest.raises(InvalidJob) as raised:
        await create(schedules, key)
    assert raised.value.field == "idempotency_key"
    assert await schedules.list_schedules() == []


async def test_a_repeated_trigger_with_its_key_answers_the_first_job(
    store: JobStore, schedules: ScheduleService
) -> None:
    made = await create(schedules, None)
    first = await schedules.trigger(made.id, idempotency_key="t-1")
    again = await schedules.trigger(made.id, idempotency_key="t-1")
    assert again.id == first.id
    assert first.idempotency_key == trigger_key(made.id, "t-1")
    other = await schedules.trigger(made.id, idempotency_key="t-2")
    assert other.id != first.id
    assert (await store.stats()).total.pending == 2


async def test_a_trigger_key_too_long_for_its_job_is_refused(
    store: JobStore, schedules: ScheduleService
) -> None:
    made = await create(schedules, None)
    for key in ("x" * 201, ""):
        with pytest.raises(InvalidJob) as raised:
            await schedules.trigger(made.id, idempotency_key=key)
        assert raised.value.field == "idempotency_key"
        # The trigger key's own bound, not the job key's (1 to 256).
        assert raised.value.message == "must be 1 to 200 characters"
    assert (await store.stats()).total.pending == 0


async def test_fired_and_triggered_jobs_take_the_templates_priority(
    store: JobStore, schedules: ScheduleService, passage: Passage, make_job: MakeJob
) -> None:
    made = await schedules.create(
        name="urgent",
        template=JobTemplate(type="prio", payload=b"s", priority=7),
        interval_ms=SECOND,
        catchup_window_ms=60_000,
    )
    assert (await schedules.get(made.id)).template.priority == 7
    [plain] = await store.add([make_job(job_type="prio")])  # first in, priority 0
    await passage.advance(SECOND)
    [fired] = (await schedules.fire_due())[:1]
    triggered = await schedules.trigger(made.id)
    for job in (fired, triggered):
        assert job.priority == 7
        stored = await store.get(job.id)
        assert stored is not None
        assert stored.priority == 7
    leases = await store.claim(["prio"], limit=10, lease_ms=60_000)
    order = [lease.job.id for lease in leases]
    # Both priority-7 jobs go before the older job of priority 0.
    assert order[-1] == plain.id
    assert set(order[:2]) == {fired.id, triggered.id}


@pytest.mark.parametrize("priority", [101, -101])
async def test_a_template_priority_out_of_range_is_refused(
    schedules: ScheduleService, priority: int
) -> None:
    with pytest.raises(InvalidJob) as raised:
        await schedules.create(
            name="bad", template=JobTemplate(type="email", priority=priority), interval_ms=SECOND
        )
    assert raised.value.field == "priority"
    assert await schedules.list_schedules() == []


async def test_fired_and_triggered_jobs_take_the_templates_limit_key(
    store: JobStore, schedules: ScheduleService, passage: Passage
) -> None:
    made = await schedules.create(
        name="tenant",
        template=JobTemplate(type="keyed", payload=b"s", limit_key="customer-7"),
        interval_ms=SECOND,
        catchup_window_ms=60_000,
    )
    assert (await schedules.get(made.id)).template.limit_key == "customer-7"
    await passage.advance(SECOND)
    [fired] = (await schedules.fire_due())[:1]
    triggered = await schedules.trigger(made.id)
    for job in (fired, triggered):
        assert job.limit_key == "customer-7"
        stored = await store.get(job.id)
        assert stored is not None
        assert stored.limit_key == "customer-7"
    leases = await store.claim(["keyed"], limit=10, lease_ms=60_000)
    assert {fired.id, triggered.id} <= {lease.job.id for lease in leases}


@pytest.mark.parametrize(
    ("template", "field"),
    [
        (JobTemplate(type="email", limit_key="a b"), "limit_key"),
        (JobTemplate(type="email", limit_key="k", priority=3), "limit_key"),
    ],
)
async def test_a_template_limit_key_follows_the_jobs_rule(
    schedules: ScheduleService, template: JobTemplate, field: str
) -> None:
    with pytest.raises(InvalidJob) as raised:
        await schedules.create(name="bad", template=template, interval_ms=SECOND)
    assert raised.value.field == field
    assert await schedules.list_schedules() == []

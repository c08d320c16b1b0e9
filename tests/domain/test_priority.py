"""A job's priority: validated by the use case before any store sees it."""

from __future__ import annotations

import pytest

from jobqueue.domain import (
    MAX_PRIORITY,
    MIN_PRIORITY,
    EnqueueRequest,
    InvalidJob,
    JobService,
    ManualClock,
    UuidV7Generator,
    validate_priority,
)
from jobqueue.memory import MemoryJobStore


@pytest.mark.parametrize("priority", [MIN_PRIORITY, -1, 0, 1, MAX_PRIORITY])
def test_priorities_in_range_pass(priority: int) -> None:
    assert validate_priority(priority) == priority


@pytest.mark.parametrize("priority", [MIN_PRIORITY - 1, MAX_PRIORITY + 1, True, 1.5, "3"])
def test_other_priorities_are_refused(priority: object) -> None:
    with pytest.raises(InvalidJob) as caught:
        validate_priority(priority)  # type: ignore[arg-type]
    assert caught.value.field == "priority"


async def test_the_use_case_stores_the_priority_and_refuses_a_bad_one_storing_nothing() -> None:
    store = MemoryJobStore()
    service = JobService(store, clock=ManualClock(), ids=UuidV7Generator())
    job = await service.enqueue("t", priority=7)
    assert job.priority == 7
    assert (await service.get(job.id)).priority == 7
    assert (await service.enqueue(EnqueueRequest(type="t"))).priority == 0
    with pytest.raises(InvalidJob):
        await service.enqueue_many(
            [EnqueueRequest(type="t"), EnqueueRequest(type="t", priority=101)]
        )
    with pytest.raises(TypeError):
        await service.enqueue(EnqueueRequest(type="t"), priority=1)
    assert (await store.stats()).total.pending == 2

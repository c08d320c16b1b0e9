"""The producer use cases, over the in-memory store (a real adapter, not a mock)."""

from __future__ import annotations

import pytest

from jobqueue.domain import (
    EnqueueRequest,
    InvalidJob,
    JobNotFound,
    JobService,
    JobStatus,
    Limits,
    ManualClock,
    UuidV7Generator,
)
from jobqueue.memory import MemoryJobStore


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def service(clock: ManualClock) -> JobService:
    return JobService(
        MemoryJobStore(clock=clock),
        clock=clock,
        ids=UuidV7Generator(),
        limits=Limits(max_payload_bytes=16, max_batch_size=3),
    )


async def test_enqueue_without_time_is_due_now(service: JobService, clock: ManualClock) -> None:
    job = await service.enqueue("send_email", b"{}")
    assert (job.status, job.execution_time_ms, job.created_at) == (
        JobStatus.PENDING,
        clock.now_ms(),
        clock.now_ms(),
    )
    assert await service.get(job.id) == job


async def test_enqueue_keeps_an_explicit_time(service: JobService) -> None:
    job = await service.enqueue("t", execution_time_ms=1_640_000_000_000)
    assert job.execution_time_ms == 1_640_000_000_000


async def test_invalid_input_stores_nothing(service: JobService) -> None:
    for bad in (
        EnqueueRequest(type=""),
        EnqueueRequest(type="ok", payload=b"x" * 17),
        EnqueueRequest(type="ok", execution_time_ms=-5),
        EnqueueRequest(type="ok", max_attempts=0),
    ):
        with pytest.raises(InvalidJob):
            await service.enqueue(bad)
        with pytest.raises(InvalidJob):
            await service.enqueue(
                bad.type,
                bad.payload,
                execution_time_ms=bad.execution_time_ms,
                max_attempts=bad.max_attempts,
            )
    assert (await service.list_jobs()).jobs == []


async def test_enqueue_takes_the_request_a_transport_builds(service: JobService) -> None:
    request = EnqueueRequest(type="t", payload=b"p", max_attempts=2, idempotency_key="k")
    job = await service.enqueue(request)
    assert (job.type, job.payload, job.max_attempts, job.idempotency_key) == ("t", b"p", 2, "k")
    assert await service.enqueue("t", b"p", max_attempts=2, idempotency_key="k") == job
    with pytest.raises(TypeError):
        await service.enqueue(request, b"other")


async def test_a_bad_request_rejects_the_whole_batch(service: JobService) -> None:
    with pytest.raises(InvalidJob) as raised:
        await service.enqueue_many([EnqueueRequest(type="a"), EnqueueRequest(type="b c")])
    assert raised.value.field == "jobs[1].type"
    with pytest.raises(InvalidJob, match="at most 3"):
        await service.enqueue_many([EnqueueRequest(type="a")] * 4)
    assert (await service.list_jobs()).jobs == []
    assert len(await service.enqueue_many([EnqueueRequest(type="a")] * 3)) == 3


async def test_get_and_cancel_validate_ids(service: JobService) -> None:
    with pytest.raises(InvalidJob):
        await service.get("job-id-here")
    with pytest.raises(JobNotFound):
        await service.get("0190c3a2-7d5e-7b1c-9a4f-3e2d1c0b9a87")
    with pytest.raises(InvalidJob):
        await service.cancel("nope")


async def test_list_clamps_page_size(service: JobService) -> None:
    await service.enqueue_many([EnqueueRequest(type="a")] * 3)
    page = await service.list_jobs(page_size=2)
    assert len(page.jobs) == 2
    assert page.next_cursor
    rest = await service.list_jobs(page_size=2, cursor=page.next_cursor)
    assert len(rest.jobs) == 1
    assert not rest.next_cursor
    with pytest.raises(InvalidJob):
        await service.list_jobs(job_type="bad type")

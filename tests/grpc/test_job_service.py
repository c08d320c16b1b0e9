"""JobService over a real channel: the seed's flow and the additions."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from jobqueue.domain import Limits
from jobqueue.memory import MemoryJobStore
from mpataki.jobqueue.v1 import jobqueue_pb2 as pb
from mpataki.jobqueue.v1 import jobqueue_pb2_grpc
from mpataki.jobqueue.v1 import worker_pb2 as worker_pb
from tests.grpc.conftest import TEST_OPTIONS, Api, start_api


def now_ms() -> int:
    return time.time_ns() // 1_000_000


async def test_enqueue_without_a_time_is_due_now(api: Api) -> None:
    before = now_ms()
    response = await api.jobs.EnqueueJob(pb.EnqueueJobRequest(type="send_email", payload=b"{}"))
    job = response.job
    assert job.type == "send_email"
    assert job.payload == b"{}"
    assert job.status == pb.JOB_STATUS_PENDING
    assert before <= job.execution_time_ms <= now_ms()
    assert job.created_at == job.updated_at == job.execution_time_ms
    assert job.attempts == 0
    assert not job.HasField("max_attempts")
    assert not job.HasField("last_error")
    assert not job.HasField("result")


async def test_enqueue_keeps_an_explicit_time_even_zero(api: Api) -> None:
    later = await api.jobs.EnqueueJob(
        pb.EnqueueJobRequest(type="report", execution_time_ms=1_640_000_000_000)
    )
    assert later.job.execution_time_ms == 1_640_000_000_000
    epoch = await api.jobs.EnqueueJob(pb.EnqueueJobRequest(type="report", execution_time_ms=0))
    assert epoch.job.execution_time_ms == 0


async def test_get_returns_what_enqueue_stored(api: Api) -> None:
    enqueued = await api.jobs.EnqueueJob(
        pb.EnqueueJobRequest(type="t", payload=b"\x00\xff", max_attempts=3)
    )
    got = await api.jobs.GetJob(pb.GetJobRequest(id=enqueued.job.id))
    assert got.job == enqueued.job
    assert got.job.max_attempts == 3


async def test_get_accepts_an_upper_case_id(api: Api) -> None:
    enqueued = await api.jobs.EnqueueJob(pb.EnqueueJobRequest(type="t"))
    got = await api.jobs.GetJob(pb.GetJobRequest(id=enqueued.job.id.upper()))
    assert got.job.id == enqueued.job.id


async def test_cancel_a_pending_job(api: Api) -> None:
    enqueued = await api.jobs.EnqueueJob(pb.EnqueueJobRequest(type="t"))
    cancelled = await api.jobs.CancelJob(pb.CancelJobRequest(id=enqueued.job.id))
    assert cancelled.job.status == pb.JOB_STATUS_CANCELLED
    got = await api.jobs.GetJob(pb.GetJobRequest(id=enqueued.job.id))
    assert got.job.status == pb.JOB_STATUS_CANCELLED


async def test_cancel_a_running_job_asks_its_worker(api: Api) -> None:
    enqueued = await api.jobs.EnqueueJob(pb.EnqueueJobRequest(type="t"))
    await api.workers.ClaimJobs(worker_pb.ClaimJobsRequest(types=["t"]))
    response = await api.jobs.CancelJob(pb.CancelJobRequest(id=enqueued.job.id))
    assert response.job.status == pb.JOB_STATUS_RUNNING
    assert response.job.cancel_requested


async def test_the_same_idempotency_key_returns_the_first_job(api: Api) -> None:
    request = pb.EnqueueJobRequest(type="t", payload=b"1", idempotency_key="order-42")
    first = await api.jobs.EnqueueJob(request)
    again = await api.jobs.EnqueueJob(
        pb.EnqueueJobRequest(type="t", payload=b"2", idempotency_key="order-42")
    )
    assert again.job == first.job
    assert again.job.idempotency_key == "order-42"
    stats = await api.jobs.GetQueueStats(pb.GetQueueStatsRequest())
    assert stats.total.pending == 1


async def test_enqueue_jobs_answers_in_request_order(api: Api) -> None:
    response = await api.jobs.EnqueueJobs(
        pb.EnqueueJobsRequest(jobs=[pb.EnqueueJobRequest(type=f"t{i}") for i in range(5)])
    )
    assert [job.type for job in response.jobs] == [f"t{i}" for i in range(5)]
    assert len({job.id for job in response.jobs}) == 5
    empty = await api.jobs.EnqueueJobs(pb.EnqueueJobsRequest())
    assert list(empty.jobs) == []


async def test_enqueue_jobs_with_a_known_batch_key_returns_the_first_batch(api: Api) -> None:
    request = pb.EnqueueJobsRequest(
        jobs=[pb.EnqueueJobRequest(type="a"), pb.EnqueueJobRequest(type="b")],
        idempotency_key="nightly-import",
    )
    first = await api.jobs.EnqueueJobs(request)
    again = await api.jobs.EnqueueJobs(request)
    assert [job.id for job in again.jobs] == [job.id for job in first.jobs]
    stats = await api.jobs.GetQueueStats(pb.GetQueueStatsRequest())
    assert stats.total.pending == 2


async def test_list_jobs_pages_through_every_match_once(api: Api) -> None:
    await api.jobs.EnqueueJobs(
        pb.EnqueueJobsRequest(
            jobs=[pb.EnqueueJobRequest(type="a")] * 7 + [pb.EnqueueJobRequest(type="b")] * 3
        )
    )
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = await api.jobs.ListJobs(pb.ListJobsRequest(type="a", page_size=3, page_token=token))
        assert all(job.type == "a" for job in page.jobs)
        seen.extend(job.id for job in page.jobs)
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == len(set(seen)) == 7
    assert pages == 3


async def test_list_jobs_filters_by_status(api: Api) -> None:
    jobs = await api.jobs.EnqueueJobs(
        pb.EnqueueJobsRequest(jobs=[pb.EnqueueJobRequest(type="a")] * 3)
    )
    await api.jobs.CancelJob(pb.CancelJobRequest(id=jobs.jobs[0].id))
    cancelled = await api.jobs.ListJobs(pb.ListJobsRequest(status=pb.JOB_STATUS_CANCELLED))
    assert [job.id for job in cancelled.jobs] == [jobs.jobs[0].id]
    everything = await api.jobs.ListJobs(pb.ListJobsRequest())
    assert len(everything.jobs) == 3


async def test_list_jobs_shrinks_a_page_that_would_not_fit_in_a_message() -> None:
    # 40 jobs of 60 KiB are 2.4 MiB, over the 1 MiB message limit: a page of
    # 100 must come back smaller, and paging must still see every job once.
    store = MemoryJobStore()
    server = await start_api(store, limits=Limits(max_payload_bytes=64 * 1024, max_page_size=100))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            jobs = jobqueue_pb2_grpc.JobServiceStub(channel)
            for _ in range(4):
                await jobs.EnqueueJobs(
                    pb.EnqueueJobsRequest(
                        jobs=[pb.EnqueueJobRequest(type="big", payload=b"x" * 60 * 1024)] * 10
                    )
                )
            seen: list[str] = []
            sizes: list[int] = []
            token = ""
            while True:
                page = await jobs.ListJobs(pb.ListJobsRequest(page_size=100, page_token=token))
                sizes.append(page.ByteSize())
                seen.extend(job.id for job in page.jobs)
                token = page.next_page_token
                if not token:
                    break
    finally:
        await server.stop(None)
    assert len(seen) == len(set(seen)) == 40
    assert len(sizes) >= 3
    assert max(sizes) <= TEST_OPTIONS.max_message_bytes


async def test_queue_stats_count_per_type(api: Api) -> None:
    await api.jobs.EnqueueJobs(
        pb.EnqueueJobsRequest(
            jobs=[
                pb.EnqueueJobRequest(type="a"),
                pb.EnqueueJobRequest(type="a", execution_time_ms=now_ms() + 3_600_000),
                pb.EnqueueJobRequest(type="b"),
            ]
        )
    )
    stats = await api.jobs.GetQueueStats(pb.GetQueueStatsRequest())
    rows = {row.type: row for row in stats.types}
    assert (rows["a"].pending, rows["a"].scheduled) == (1, 1)
    assert rows["b"].pending == 1
    assert stats.total.type == ""
    assert (stats.total.pending, stats.total.scheduled) == (2, 1)


async def test_watch_streams_each_change_and_ends_at_a_terminal_status(api: Api) -> None:
    enqueued = await api.jobs.EnqueueJob(pb.EnqueueJobRequest(type="w"))
    seen: list[int] = []

    async def watch() -> None:
        async for update in api.jobs.WatchJob(pb.WatchJobRequest(id=enqueued.job.id)):
            seen.append(update.job.status)

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0.05)
    claimed = await api.workers.ClaimJobs(worker_pb.ClaimJobsRequest(types=["w"]))
    await asyncio.sleep(0.05)
    (lease,) = claimed.leases
    await api.workers.SettleJobs(
        worker_pb.SettleJobsRequest(
            outcomes=[
                worker_pb.Outcome(
                    job_id=lease.job.id,
                    token=lease.token,
                    kind=worker_pb.OUTCOME_KIND_COMPLETE,
                    result=b"done",
                )
            ]
        )
    )
    await asyncio.wait_for(watcher, timeout=5)
    assert seen == [pb.JOB_STATUS_PENDING, pb.JOB_STATUS_RUNNING, pb.JOB_STATUS_COMPLETED]


@pytest.mark.parametrize("page_size", [0, -5])
async def test_a_non_positive_page_size_means_the_default(api: Api, page_size: int) -> None:
    await api.jobs.EnqueueJobs(pb.EnqueueJobsRequest(jobs=[pb.EnqueueJobRequest(type="a")] * 3))
    page = await api.jobs.ListJobs(pb.ListJobsRequest(page_size=page_size))
    assert len(page.jobs) == 3

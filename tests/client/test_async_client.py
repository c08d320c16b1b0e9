"""AsyncJobClient against the real servicers on a loopback port, over the memory store."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jobqueue.client import (
    AsyncJobClient,
    InvalidJob,
    Job,
    JobAlreadyFinished,
    JobNotFound,
    JobQueueClientError,
    JobSpec,
    JobStatus,
    WaitTimeout,
)
from jobqueue.domain import Outcome, OutcomeKind
from jobqueue.grpc import RunningServer
from jobqueue.worker import GrpcSource, JobContext, Worker, WorkerSettings
from tests.client._servers import UnreliableStore

MISSING_ID = "01900000-0000-7000-8000-000000000000"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# -- enqueue ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "wire"),
    [
        (b"\x00\xffraw", b"\x00\xffraw"),
        ("héllo", "héllo".encode()),
        ({"to": "a@example.com", "n": [1, 2]}, b'{"to":"a@example.com","n":[1,2]}'),
        ([1, "two"], b'[1,"two"]'),
        (42, b"42"),
        (None, b""),
    ],
)
async def test_payloads_are_sent_as_bytes_text_or_compact_json(
    client: AsyncJobClient, payload: Any, wire: bytes
) -> None:
    job = await client.enqueue("t", payload)
    assert job.payload == wire
    assert (await client.get(job.id)).payload == wire


async def test_an_enqueued_job_is_pending_now_with_its_options(client: AsyncJobClient) -> None:
    before = now_ms()
    job = await client.enqueue("send_email", {"to": "x"}, max_attempts=3)
    assert job.status is JobStatus.PENDING
    assert job.type == "send_email"
    assert job.max_attempts == 3
    assert job.attempts == 0
    assert job.payload_json() == {"to": "x"}
    assert before - 5 <= job.run_at.timestamp() * 1000 <= now_ms() + 5
    assert job.run_at.tzinfo is UTC
    assert not job.is_finished


async def test_run_at_accepts_a_datetime_or_epoch_ms(client: AsyncJobClient) -> None:
    when = datetime(2040, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    assert (await client.enqueue("t", run_at=when)).run_at == when
    at_ms = int(when.timestamp() * 1000) + 1
    job = await client.enqueue("t", run_at=at_ms)
    assert job.run_at == when + timedelta(milliseconds=1)


@pytest.mark.parametrize("delay", [60, 60.0, timedelta(minutes=1)])
async def test_delay_schedules_from_now(client: AsyncJobClient, delay: float | timedelta) -> None:
    before = now_ms()
    job = await client.enqueue("t", delay_s=delay)
    due = job.run_at.timestamp() * 1000
    assert before + 60_000 - 5 <= due <= now_ms() + 60_000 + 5


async def test_run_at_and_delay_together_are_refused_before_sending(
    client: AsyncJobClient, store: UnreliableStore
) -> None:
    with pytest.raises(ValueError, match="not both"):
        await client.enqueue("t", run_at=1, delay_s=1)
    assert (await store.stats()).total.pending == 0


async def test_an_invalid_job_raises_invalid_job_with_the_servers_message(
    client: AsyncJobClient,
) -> None:
    with pytest.raises(InvalidJob, match="type") as caught:
        await client.enqueue("not a valid type!")
    assert caught.value.code == "INVALID_ARGUMENT"
    with pytest.raises(InvalidJob, match="max_attempts"):
        await client.enqueue("t", max_attempts=0)


async def test_an_unserializable_payload_is_a_type_error(client: AsyncJobClient) -> None:
    with pytest.raises(TypeError):
        await client.enqueue("t", {"when": object()})


async def test_enqueue_many_keeps_order_and_is_atomic(
    client: AsyncJobClient, store: UnreliableStore
) -> None:
    jobs = await client.enqueue_many(
        [JobSpec("a", b"1"), JobSpec("b", {"k": 2}, delay_s=30), JobSpec("c", max_attempts=2)]
    )
    assert [job.type for job in jobs] == ["a", "b", "c"]
    assert jobs[1].payload == b'{"k":2}'
    assert jobs[2].max_attempts == 2
    assert not any(job.idempotency_key for job in jobs)  # the batch carries the key
    with pytest.raises(InvalidJob, match=r"jobs\[1\]\.type"):
        await client.enqueue_many([JobSpec("ok"), JobSpec("")])
    assert (await store.stats()).total.pending + (await store.stats()).total.scheduled == 3
    assert await client.enqueue_many([]) == []


# -- idempotency ----------------------------------------------------------------------


async def test_the_same_idempotency_key_twice_gives_one_job(
    client: AsyncJobClient, store: UnreliableStore
) -> None:
    first = await client.enqueue("t", b"x", idempotency_key="order-42")
    second = await client.enqueue("t", b"x", idempotency_key="order-42")
    assert second.id == first.id
    assert first.idempotency_key == "order-42"
    assert [job.id async for job in client.list()] == [first.id]


async def test_each_enqueue_gets_its_own_generated_key(client: AsyncJobClient) -> None:
    first = await client.enqueue("t")
    second = await client.enqueue("t")
    assert first.idempotency_key
    assert second.idempotency_key
    assert first.idempotency_key != second.idempotency_key
    assert first.id != second.id


async def test_an_enqueue_retried_after_a_lost_reply_creates_one_job(
    client: AsyncJobClient, store: UnreliableStore
) -> None:
    # The server stores the job, then the reply is lost (UNAVAILABLE); the
    # client retries with the same generated key and gets the stored job back.
    store.lose_add_replies = 2
    job = await client.enqueue("t", b"once")
    assert store.lose_add_replies == 0
    listed = [listed async for listed in client.list()]
    assert [listed_job.id for listed_job in listed] == [job.id]


async def test_a_batch_retried_after_a_lost_reply_creates_each_job_once(
    client: AsyncJobClient, store: UnreliableStore
) -> None:
    store.lose_add_replies = 1
    jobs = await client.enqueue_many([JobSpec("t", b"1"), JobSpec("t", b"2")])
    assert store.lose_add_replies == 0
    assert sorted([job.id async for job in client.list()]) == sorted(job.id for job in jobs)


async def test_a_batch_key_given_twice_gives_the_first_batch(
    client: AsyncJobClient, store: UnreliableStore
) -> None:
    first = await client.enqueue_many([JobSpec("t", b"1")], idempotency_key="import-9")
    again = await client.enqueue_many(
        [JobSpec("t", b"1"), JobSpec("u", b"2")], idempotency_key="import-9"
    )
    assert [job.id for job in again] == [job.id for job in first]
    assert (await store.stats()).total.pending == 1
    with pytest.raises(InvalidJob, match="idempotency_key"):
        await client.enqueue_many([JobSpec("t")], idempotency_key="")


# -- get, cancel, list, stats -----------------------------------------------------------


async def test_get_of_an_unknown_or_malformed_id(client: AsyncJobClient) -> None:
    with pytest.raises(JobNotFound) as caught:
        await client.get(MISSING_ID)
    assert caught.value.job_id == MISSING_ID
    assert caught.value.code == "NOT_FOUND"
    with pytest.raises(InvalidJob):
        await client.get("not-an-id")


async def test_cancel_a_pending_job_then_again(client: AsyncJobClient) -> None:
    job = await client.enqueue("t")
    cancelled = await client.cancel(job.id)
    assert cancelled.status is JobStatus.CANCELLED
    assert cancelled.is_finished
    with pytest.raises(JobAlreadyFinished) as caught:
        await client.cancel(job.id)
    assert caught.value.job_id == job.id
    assert caught.value.code == "FAILED_PRECONDITION"
    with pytest.raises(JobNotFound):
        await client.cancel(MISSING_ID)


async def test_a_cancel_retried_after_a_lost_reply_reports_the_cancelled_job(
    client: AsyncJobClient, store: UnreliableStore
) -> None:
    # The first attempt cancels the job but its reply is lost; the retry finds
    # the job already CANCELLED, which is what the caller asked for.
    job = await client.enqueue("t")
    store.lose_cancel_replies = 1
    cancelled = await client.cancel(job.id)
    assert cancelled.status is JobStatus.CANCELLED
    assert store.lose_cancel_replies == 0


async def test_list_pages_through_every_job_once(client: AsyncJobClient) -> None:
    enqueued = await client.enqueue_many([JobSpec("t", str(i)) for i in range(17)])
    listed = [job async for job in client.list(page_size=5)]
    assert sorted(job.id for job in listed) == sorted(job.id for job in enqueued)
    assert len(listed) == 17


async def test_list_filters_limits_and_exposes_pages(client: AsyncJobClient) -> None:
    kept = await client.enqueue_many([JobSpec("a") for _ in range(6)])
    await client.enqueue_many([JobSpec("b") for _ in range(3)])
    await client.cancel(kept[0].id)
    assert len([job async for job in client.list("a")]) == 6
    pending_a = [job async for job in client.list("a", JobStatus.PENDING)]
    assert len(pending_a) == 5
    assert all(job.type == "a" and job.status is JobStatus.PENDING for job in pending_a)
    assert [job.id async for job in client.list(status="cancelled")] == [kept[0].id]
    assert len([job async for job in client.list(page_size=2, limit=5)]) == 5
    first = await client.list_page(page_size=4)
    assert len(first.jobs) == 4
    assert first.next_page_token
    rest = await client.list_page(page_size=100, page_token=first.next_page_token)
    assert len(rest.jobs) == 5
    assert rest.next_page_token == ""


async def test_stats_counts_per_type_and_in_total(client: AsyncJobClient) -> None:
    await client.enqueue_many([JobSpec("a"), JobSpec("a"), JobSpec("b", delay_s=60)])
    cancelled = await client.enqueue("b")
    await client.cancel(cancelled.id)
    stats = await client.stats()
    rows = {row.type: row for row in stats.types}
    assert (rows["a"].pending, rows["b"].scheduled, rows["b"].cancelled) == (2, 1, 1)
    assert stats.total.type == ""
    assert (stats.total.pending, stats.total.scheduled, stats.total.cancelled) == (2, 1, 1)
    assert stats.to_dict()["total"]["pending"] == 2


# -- wait and watch ---------------------------------------------------------------------


async def test_wait_returns_the_job_a_real_worker_completed(
    client: AsyncJobClient, server: RunningServer
) -> None:
    worker = Worker(
        GrpcSource(f"127.0.0.1:{server.port}", timeout_s=5),
        settings=WorkerSettings(claim_wait_ms=200, shutdown_grace_s=1),
    )

    @worker.handler("add")
    async def add(job: JobContext) -> dict[str, int]:
        numbers = job.json()
        return {"sum": numbers["a"] + numbers["b"]}

    await worker.start()
    try:
        job = await client.enqueue("add", {"a": 2, "b": 3})
        done = await client.wait(job.id, timeout_s=10)
    finally:
        await worker.stop(grace_s=0)
    assert done.status is JobStatus.COMPLETED
    assert done.json() == {"sum": 5}
    assert done.attempts == 1


async def test_watch_reports_each_state_until_the_end(
    client: AsyncJobClient, store: UnreliableStore
) -> None:
    job = await client.enqueue("t")
    seen: list[Job] = []
    first_seen = asyncio.Event()

    async def follow() -> None:
        async for state in client.watch(job.id, timeout_s=10):
            seen.append(state)
            first_seen.set()

    follower = asyncio.create_task(follow())
    await asyncio.wait_for(first_seen.wait(), 5)
    (lease,) = await store.claim(["t"], limit=1, lease_ms=10_000)
    await asyncio.sleep(0.05)
    await client.cancel(job.id)  # RUNNING: the worker is asked to stop
    await store.settle([Outcome(job_id=job.id, token=lease.token, kind=OutcomeKind.CANCELLED)])
    await asyncio.wait_for(follower, 5)
    statuses = [state.status for state in seen]
    assert statuses[0] is JobStatus.PENDING
    assert statuses[-1] is JobStatus.CANCELLED
    assert JobStatus.RUNNING in statuses


async def test_wait_times_out_with_the_last_state(client: AsyncJobClient) -> None:
    job = await client.enqueue("t")
    started = time.monotonic()
    with pytest.raises(WaitTimeout) as caught:
        await client.wait(job.id, timeout_s=0.3)
    assert 0.25 <= time.monotonic() - started < 2
    assert isinstance(caught.value, TimeoutError)
    last = caught.value.last_seen
    assert isinstance(last, Job)
    assert last.status is JobStatus.PENDING


async def test_wait_for_an_unknown_job(client: AsyncJobClient) -> None:
    with pytest.raises(JobNotFound):
        await client.wait(MISSING_ID, timeout_s=2)


async def test_a_finished_job_is_returned_at_once(client: AsyncJobClient) -> None:
    job = await client.enqueue("t")
    await client.cancel(job.id)
    assert (await client.wait(job.id, timeout_s=2)).status is JobStatus.CANCELLED


# -- life cycle --------------------------------------------------------------------------


async def test_a_closed_client_refuses_calls(server: RunningServer) -> None:
    client = AsyncJobClient(target=f"127.0.0.1:{server.port}")
    await client.enqueue("t")
    await client.close()
    await client.close()
    with pytest.raises(JobQueueClientError, match="closed"):
        await client.get(MISSING_ID)


async def test_the_target_defaults_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBQUEUE_SERVER", "127.0.0.1:1234")
    assert AsyncJobClient().target == "127.0.0.1:1234"
    monkeypatch.delenv("JOBQUEUE_SERVER")
    assert AsyncJobClient().target == "localhost:8080"
    assert AsyncJobClient(target="127.0.0.1:9").target == "127.0.0.1:9"


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="timeout"):
        AsyncJobClient(timeout_s=0)
    with pytest.raises(ValueError, match="together"):
        AsyncJobClient(client_cert="cert.pem")

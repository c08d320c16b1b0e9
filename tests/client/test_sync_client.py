"""JobClient, the blocking client, against a server running in a background thread."""

from __future__ import annotations

import threading

import pytest

from jobqueue.client import (
    InvalidJob,
    JobAlreadyFinished,
    JobClient,
    JobNotFound,
    JobQueueClientError,
    JobSpec,
    JobStatus,
    ServerUnavailable,
    WaitTimeout,
)
from jobqueue.domain import Outcome, OutcomeKind
from tests._redis_server import free_port
from tests.client._servers import ServerThread

MISSING_ID = "01900000-0000-7000-8000-000000000000"


def test_enqueue_get_and_cancel(sync_client: JobClient) -> None:
    job = sync_client.enqueue("send_email", {"to": "a"}, delay_s=60, max_attempts=2)
    assert job.status is JobStatus.PENDING
    assert job.payload == b'{"to":"a"}'
    fetched = sync_client.get(job.id)
    assert fetched == job
    cancelled = sync_client.cancel(job.id)
    assert cancelled.status is JobStatus.CANCELLED
    with pytest.raises(JobAlreadyFinished):
        sync_client.cancel(job.id)
    with pytest.raises(JobNotFound):
        sync_client.get(MISSING_ID)


def test_batches_listing_and_stats(sync_client: JobClient) -> None:
    jobs = sync_client.enqueue_many([JobSpec("a", str(i)) for i in range(11)])
    listed = list(sync_client.list("a", page_size=3))
    assert sorted(job.id for job in listed) == sorted(job.id for job in jobs)
    assert len(list(sync_client.list(status=JobStatus.PENDING, limit=4))) == 4
    assert sync_client.stats().total.pending == 11
    with pytest.raises(InvalidJob, match=r"jobs\[0\]"):
        sync_client.enqueue_many([JobSpec("bad type")])


def test_the_same_idempotency_key_gives_one_job(sync_client: JobClient) -> None:
    first = sync_client.enqueue("t", idempotency_key="k")
    assert sync_client.enqueue("t", idempotency_key="k").id == first.id
    assert len(list(sync_client.list())) == 1


def test_a_lost_reply_is_retried_into_the_same_job(
    server_thread: ServerThread, sync_client: JobClient
) -> None:
    assert server_thread.store is not None
    server_thread.store.lose_add_replies = 1
    job = sync_client.enqueue("t")
    assert [listed.id for listed in sync_client.list()] == [job.id]


def test_wait_returns_when_the_job_is_settled(
    server_thread: ServerThread, sync_client: JobClient
) -> None:
    store = server_thread.store
    assert store is not None
    job = sync_client.enqueue("t")

    def complete() -> None:
        (lease,) = server_thread.run(store.claim(["t"], limit=1, lease_ms=10_000, wait_ms=1_000))
        outcome = Outcome(
            job_id=job.id, token=lease.token, kind=OutcomeKind.COMPLETE, result=b'{"ok":true}'
        )
        server_thread.run(store.settle([outcome]))

    worker = threading.Timer(0.1, complete)
    worker.start()
    done = sync_client.wait(job.id, timeout_s=10)
    worker.join()
    assert done.status is JobStatus.COMPLETED
    assert done.json() == {"ok": True}
    states = list(sync_client.watch(job.id, timeout_s=5))
    assert [state.status for state in states] == [JobStatus.COMPLETED]


def test_wait_times_out(sync_client: JobClient) -> None:
    job = sync_client.enqueue("t")
    with pytest.raises(WaitTimeout):
        sync_client.wait(job.id, timeout_s=0.2)


def test_unavailable_store_is_retried(server_thread: ServerThread, sync_client: JobClient) -> None:
    assert server_thread.store is not None
    job = sync_client.enqueue("t")
    server_thread.store.fail_gets = 2
    assert sync_client.get(job.id).id == job.id


def test_an_unreachable_server_and_a_closed_client() -> None:
    with (
        JobClient(target=f"127.0.0.1:{free_port()}", retries=1) as client,
        pytest.raises(ServerUnavailable),
    ):
        client.stats()
    with pytest.raises(JobQueueClientError, match="closed"):
        client.stats()


def test_one_client_shared_by_threads(sync_client: JobClient) -> None:
    # The channel opens on the first call, whichever thread makes it.
    ids: list[str] = []

    def submit(thread: int) -> None:
        ids.extend(sync_client.enqueue("threads", thread * 100 + n).id for n in range(20))

    threads = [threading.Thread(target=submit, args=(thread,)) for thread in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(ids)) == 160
    assert len(list(sync_client.list("threads", limit=None))) == 160

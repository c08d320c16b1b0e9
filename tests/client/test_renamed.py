"""The unit-suffixed names (``timeout_s``, ``delay_s``) and their deprecated old names."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import pytest

from jobqueue.client import AsyncJobClient, Job, JobClient, JobSpec, JobStatus


def test_the_clients_calls_keep_their_signatures() -> None:
    enqueue = [
        *("type", "payload", "run_at", "delay_s", "max_attempts", "idempotency_key", "delay"),
        *("unique_key", "on_conflict", "unique_for", "headers", "priority", "limit_key"),
    ]
    listing = ["type", "status", "page_size", "limit"]
    for cls in (JobClient, AsyncJobClient):
        assert list(inspect.signature(cls.enqueue).parameters) == ["self", *enqueue]
        assert inspect.signature(cls.get).return_annotation is Job
        client = cls(target="127.0.0.1:1")
        # What help() and editors show of a bound method: no self, nothing lost.
        assert list(inspect.signature(client.enqueue).parameters) == enqueue
        assert list(inspect.signature(client.list).parameters) == listing
        assert list(inspect.signature(client.wait).parameters) == ["job_id", "timeout_s", "timeout"]
        assert inspect.signature(cls.__init__) == inspect.signature(JobClient.__init__)
        assert (client.enqueue.__doc__ or "").startswith("Submit one job.")
    assert inspect.signature(JobClient.list).return_annotation == Iterator[Job]
    assert inspect.signature(AsyncJobClient.list).return_annotation == AsyncIterator[Job]


def test_the_old_timeout_name_warns_and_still_works() -> None:
    with pytest.warns(DeprecationWarning, match="timeout_s="):
        client = JobClient(target="127.0.0.1:1", timeout=3)
    assert client._conn.timeout_s == 3
    client.close()
    with pytest.raises(TypeError, match="not both"):
        JobClient(target="127.0.0.1:1", timeout=3, timeout_s=4)


def test_the_old_delay_name_of_a_job_spec_warns_and_still_works() -> None:
    with pytest.warns(DeprecationWarning, match="delay_s="):
        spec = JobSpec("t", delay=timedelta(seconds=5))
    assert spec == JobSpec("t", delay_s=timedelta(seconds=5))


def test_old_names_on_calls_warn_and_still_work(sync_client: JobClient) -> None:
    with pytest.warns(DeprecationWarning, match="delay_s=") as warned:
        job = sync_client.enqueue("renamed", delay=60)
    assert warned[0].filename == __file__  # points at the caller's line
    assert (job.run_at - job.created_at).total_seconds() == pytest.approx(60, abs=2)
    cancelled = sync_client.cancel(job.id)
    with pytest.warns(DeprecationWarning, match="timeout_s="):
        assert sync_client.wait(job.id, timeout=5).status is JobStatus.CANCELLED
    assert cancelled.status is JobStatus.CANCELLED


async def test_the_async_client_takes_the_old_names_too(client: AsyncJobClient) -> None:
    with pytest.warns(DeprecationWarning, match="delay_s="):
        job = await client.enqueue("renamed", delay=60)
    await client.cancel(job.id)
    with pytest.warns(DeprecationWarning, match="timeout_s="):
        states = [state async for state in client.watch(job.id, timeout=5)]
    assert [state.status for state in states] == [JobStatus.CANCELLED]

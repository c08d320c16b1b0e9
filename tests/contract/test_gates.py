"""The TypeGates contract (pause and resume a job type), on every store.

A paused type is skipped by claims in the step that leases, so nothing of it
is leased after ``pause_type`` returned; its jobs stay PENDING, producers
still enqueue, and leases already out still renew and settle.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from jobqueue.domain import (
    GateService,
    InvalidJob,
    JobQuery,
    JobStatus,
    JobStore,
    LeaseState,
    Outcome,
    OutcomeKind,
    TypeGates,
)
from tests.contract.conftest import MakeJob, MakeStore, Passage

LEASE = 30_000


def gates(store: JobStore) -> TypeGates:
    assert isinstance(store, TypeGates)
    return store


async def test_a_paused_type_is_skipped_and_its_jobs_stay_pending(
    store: JobStore, make_job: MakeJob
) -> None:
    await store.add([make_job("a") for _ in range(3)] + [make_job("b") for _ in range(2)])
    assert await gates(store).pause_type("a") is True
    leases = await store.claim(["a", "b"], limit=10, lease_ms=LEASE)
    assert sorted(lease.job.type for lease in leases) == ["b", "b"]
    assert await store.claim(["a"], limit=10, lease_ms=LEASE) == []
    # Producers still enqueue into a paused type.
    await store.add([make_job("a")])
    page = await store.list_jobs(JobQuery(type="a"))
    assert [job.status for job in page.jobs] == [JobStatus.PENDING] * 4
    assert all(job.attempts == 0 for job in page.jobs)


async def test_pause_and_resume_are_idempotent_and_say_whether_they_changed(
    store: JobStore,
) -> None:
    g = gates(store)
    assert await g.resume_type("a") is False
    assert await g.pause_type("a") is True
    assert await g.pause_type("a") is False
    assert await g.paused_types() == ["a"]
    assert await g.resume_type("a") is True
    assert await g.resume_type("a") is False
    assert await g.paused_types() == []


async def test_a_resumed_type_is_claimed_again_in_due_order(
    store: JobStore, make_job: MakeJob
) -> None:
    jobs = [make_job("a", delay_ms=-30 + i) for i in range(3)]
    await store.add(jobs)
    await gates(store).pause_type("a")
    assert await store.claim(["a"], limit=10, lease_ms=LEASE) == []
    await gates(store).resume_type("a")
    leases = await store.claim(["a"], limit=10, lease_ms=LEASE)
    assert [lease.job.id for lease in leases] == [job.id for job in jobs]


async def test_running_jobs_of_a_paused_type_renew_and_settle(
    store: JobStore, make_job: MakeJob
) -> None:
    await store.add([make_job("a"), make_job("a")])
    first, second = await store.claim(["a"], limit=2, lease_ms=LEASE)
    await gates(store).pause_type("a")
    assert await store.renew([(first.job.id, first.token)], lease_ms=LEASE) == [LeaseState.ACTIVE]
    retry = Outcome(job_id=second.job.id, token=second.token, kind=OutcomeKind.RETRY)
    done = Outcome(job_id=first.job.id, token=first.token, kind=OutcomeKind.COMPLETE)
    assert await store.settle([done, retry]) == [True, True]
    # The retried job is back in the queue, behind the gate.
    retried = await store.get(second.job.id)
    assert retried is not None
    assert retried.status is JobStatus.PENDING
    assert await store.claim(["a"], limit=10, lease_ms=LEASE) == []
    await gates(store).resume_type("a")
    (again,) = await store.claim(["a"], limit=10, lease_ms=LEASE)
    assert again.job.id == second.job.id


async def test_a_scheduled_job_falling_due_while_paused_waits_for_resume(
    store: JobStore, make_job: MakeJob, passage: Passage
) -> None:
    job = make_job("a", delay_ms=50)
    await store.add([job])
    await gates(store).pause_type("a")
    await passage.advance(51)
    assert await store.claim(["a"], limit=1, lease_ms=LEASE) == []
    await gates(store).resume_type("a")
    (lease,) = await store.claim(["a"], limit=1, lease_ms=LEASE)
    assert lease.job.id == job.id


async def test_resume_wakes_an_idle_claim(store: JobStore, make_job: MakeJob) -> None:
    await store.add([make_job("a")])
    await gates(store).pause_type("a")
    waiting = asyncio.create_task(store.claim(["a"], limit=1, lease_ms=LEASE, wait_ms=20_000))
    await asyncio.sleep(0.1)
    assert not waiting.done()
    started = time.monotonic()
    await gates(store).resume_type("a")
    leases = await asyncio.wait_for(waiting, timeout=15)
    assert len(leases) == 1
    # Woken by the resume, not by the end of its 20 s wait.
    assert time.monotonic() - started < 15


async def test_stats_flag_paused_types_even_without_jobs(
    store: JobStore, make_job: MakeJob
) -> None:
    await store.add([make_job("a"), make_job("b")])
    await gates(store).pause_type("a")
    await gates(store).pause_type("empty")
    rows = {row.type: row for row in (await store.stats()).types}
    assert (rows["a"].paused, rows["a"].pending) == (True, 1)
    assert rows["b"].paused is False
    assert (rows["empty"].paused, rows["empty"].pending) == (True, 0)
    assert (await store.stats()).total.paused is False


async def test_a_pause_holds_for_every_store_of_the_queue(
    backend: str, make_store: MakeStore, make_job: MakeJob
) -> None:
    if backend == "memory":
        pytest.skip("memory stores do not share a queue")
    producer, worker = make_store(), make_store()
    await producer.add([make_job("a")])
    await gates(producer).pause_type("a")
    assert await worker.claim(["a"], limit=1, lease_ms=LEASE) == []
    assert await gates(worker).paused_types() == ["a"]


async def test_the_use_case_refuses_a_bad_type_and_changes_nothing(store: JobStore) -> None:
    service = GateService(gates(store))
    for bad in ("", "has space", "x" * 129):
        with pytest.raises(InvalidJob):
            await service.pause_type(bad)
        with pytest.raises(InvalidJob):
            await service.resume_type(bad)
    assert await service.paused_types() == []
    assert await service.pause_type("ok") is True
    assert await service.paused_types() == ["ok"]

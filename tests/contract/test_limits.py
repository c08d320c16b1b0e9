"""Concurrency and rate limits on every store: enforced inside the claim, global to the queue.

A limited job is not claimed (it stays PENDING, untouched: attempts 0), never
claimed and handed back. Limits change at run time and apply to the next claim.
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
    Outcome,
    OutcomeKind,
    TypeGates,
    TypeLimits,
)
from tests.contract.conftest import MakeJob, MakeStore, Passage

LEASE = 30_000


def gates(store: JobStore) -> TypeGates:
    assert isinstance(store, TypeGates)
    return store


def complete(lease_job_id: str, token: str) -> Outcome:
    return Outcome(job_id=lease_job_id, token=token, kind=OutcomeKind.COMPLETE)


async def test_limits_round_trip_and_clear(store: JobStore) -> None:
    g = gates(store)
    assert await g.type_limits("a") == TypeLimits()
    limits = TypeLimits(concurrency=5, rate=50, rate_interval_ms=1_000)
    await g.set_type_limits("a", limits)
    assert await g.type_limits("a") == limits
    assert await g.type_limits("b") == TypeLimits()
    await g.set_type_limits("a", TypeLimits())
    assert await g.type_limits("a") == TypeLimits()


async def test_a_concurrency_limit_caps_running_jobs(store: JobStore, make_job: MakeJob) -> None:
    await gates(store).set_type_limits("a", TypeLimits(concurrency=3))
    await store.add([make_job("a") for _ in range(10)] + [make_job("b") for _ in range(4)])
    first = await store.claim(["a", "b"], limit=20, lease_ms=LEASE)
    assert sorted(lease.job.type for lease in first) == ["a"] * 3 + ["b"] * 4
    assert await store.claim(["a"], limit=20, lease_ms=LEASE) == []
    # The limited jobs were never touched: still PENDING, no attempt spent.
    page = await store.list_jobs(JobQuery(type="a", status=JobStatus.PENDING))
    assert len(page.jobs) == 7
    assert all(job.attempts == 0 for job in page.jobs)
    done = next(lease for lease in first if lease.job.type == "a")
    assert await store.settle([complete(done.job.id, done.token)]) == [True]
    assert len(await store.claim(["a"], limit=20, lease_ms=LEASE)) == 1


async def test_raising_a_limit_applies_to_the_next_claim(
    store: JobStore, make_job: MakeJob
) -> None:
    await gates(store).set_type_limits("a", TypeLimits(concurrency=1))
    await store.add([make_job("a") for _ in range(5)])
    assert len(await store.claim(["a"], limit=5, lease_ms=LEASE)) == 1
    await gates(store).set_type_limits("a", TypeLimits(concurrency=3))
    assert len(await store.claim(["a"], limit=5, lease_ms=LEASE)) == 2
    await gates(store).set_type_limits("a", TypeLimits())
    assert len(await store.claim(["a"], limit=5, lease_ms=LEASE)) == 2


async def test_a_rate_limit_caps_starts_per_window(
    store: JobStore, make_job: MakeJob, passage: Passage
) -> None:
    window = passage.guard_ms + 500
    await gates(store).set_type_limits("a", TypeLimits(rate=2, rate_interval_ms=window))
    await store.add([make_job("a") for _ in range(5)])
    first = await store.claim(["a"], limit=5, lease_ms=LEASE)
    assert len(first) == 2
    # Settling does not give a start back: the rate counts starts, not running jobs.
    assert await store.settle([complete(x.job.id, x.token) for x in first]) == [True, True]
    assert await store.claim(["a"], limit=5, lease_ms=LEASE) == []
    await passage.advance(window + 1)
    assert len(await store.claim(["a"], limit=5, lease_ms=LEASE)) == 2


async def test_an_idle_claim_wakes_when_a_running_job_frees_a_slot(
    store: JobStore, make_job: MakeJob
) -> None:
    await gates(store).set_type_limits("a", TypeLimits(concurrency=1))
    await store.add([make_job("a"), make_job("a")])
    (running,) = await store.claim(["a"], limit=5, lease_ms=LEASE)
    waiting = asyncio.create_task(store.claim(["a"], limit=5, lease_ms=LEASE, wait_ms=20_000))
    await asyncio.sleep(0.1)
    assert not waiting.done()
    started = time.monotonic()
    await store.settle([complete(running.job.id, running.token)])
    leases = await asyncio.wait_for(waiting, timeout=15)
    assert len(leases) == 1
    assert time.monotonic() - started < 15


async def test_limits_hold_for_every_store_of_the_queue(
    backend: str, make_store: MakeStore, make_job: MakeJob
) -> None:
    if backend == "memory":
        pytest.skip("memory stores do not share a queue")
    producer, worker = make_store(), make_store()
    await gates(producer).set_type_limits("a", TypeLimits(concurrency=2))
    await producer.add([make_job("a") for _ in range(4)])
    assert len(await producer.claim(["a"], limit=4, lease_ms=LEASE)) == 2
    assert await worker.claim(["a"], limit=4, lease_ms=LEASE) == []


async def test_the_use_case_refuses_bad_limits_and_changes_nothing(store: JobStore) -> None:
    service = GateService(gates(store))
    for bad in (
        TypeLimits(concurrency=0),
        TypeLimits(concurrency=100_001),
        TypeLimits(rate=0),
        TypeLimits(rate=5, rate_interval_ms=0),
    ):
        with pytest.raises(InvalidJob):
            await service.set_type_limits("a", bad)
    with pytest.raises(InvalidJob):
        await service.set_type_limits("bad type", TypeLimits(concurrency=1))
    assert await service.type_limits("a") == TypeLimits()

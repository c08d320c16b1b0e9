"""Per-key limits and turns across keys, on every store (issue 15).

A job's ``limit_key`` (a customer id...) puts it in its key's queue; a claim
takes the type's keys in turns, least recently served first, so a key with
many jobs waiting cannot starve one with few, and the type's per-key limits
cap each key apart, inside the claim: a limited job stays PENDING, untouched.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest

from jobqueue.domain import (
    AdminStore,
    BulkAction,
    EnqueueRequest,
    GateService,
    InvalidJob,
    Job,
    JobFilter,
    JobQuery,
    JobService,
    JobStatus,
    JobStore,
    Lease,
    Outcome,
    OutcomeKind,
    SystemClock,
    TypeGates,
    TypeLimits,
    UuidV7Generator,
)
from tests.contract.conftest import MakeJob, Passage

LEASE = 30_000


def gates(store: JobStore) -> TypeGates:
    assert isinstance(store, TypeGates)
    return store


def keyed(make_job: MakeJob, key: str | None, job_type: str = "a", **options: int) -> Job:
    return dataclasses.replace(make_job(job_type, **options), limit_key=key)


def done(lease: Lease) -> Outcome:
    return Outcome(job_id=lease.job.id, token=lease.token, kind=OutcomeKind.COMPLETE)


def by_key(leases: list[Lease]) -> Counter[str | None]:
    return Counter(lease.job.limit_key for lease in leases)


async def test_per_key_limits_round_trip(store: JobStore) -> None:
    limits = TypeLimits(concurrency=9, key_concurrency=2, key_rate=50, key_rate_interval_ms=2_000)
    await gates(store).set_type_limits("a", limits)
    assert await gates(store).type_limits("a") == limits
    await gates(store).set_type_limits("a", TypeLimits())
    assert await gates(store).type_limits("a") == TypeLimits()


async def test_a_keyed_job_keeps_its_key(store: JobStore, make_job: MakeJob) -> None:
    job = keyed(make_job, "tenant-1")
    (stored,) = await store.add([job])
    assert stored.limit_key == "tenant-1"
    fetched = await store.get(job.id)
    assert fetched is not None
    assert fetched.limit_key == "tenant-1"
    (lease,) = await store.claim(["a"], limit=5, lease_ms=LEASE)
    assert lease.job.limit_key == "tenant-1"


async def test_per_key_concurrency_caps_each_key(store: JobStore, make_job: MakeJob) -> None:
    await gates(store).set_type_limits("a", TypeLimits(key_concurrency=2))
    jobs = [keyed(make_job, key) for key in ("x", "y") for _ in range(5)]
    await store.add([*jobs, *(keyed(make_job, None) for _ in range(3))])
    first = await store.claim(["a"], limit=20, lease_ms=LEASE)
    # Jobs without a key are not held by a per-key limit.
    assert by_key(first) == {"x": 2, "y": 2, None: 3}
    assert await store.claim(["a"], limit=20, lease_ms=LEASE) == []
    page = await store.list_jobs(JobQuery(type="a", status=JobStatus.PENDING))
    assert len(page.jobs) == 6
    assert all(job.attempts == 0 for job in page.jobs)
    x = next(lease for lease in first if lease.job.limit_key == "x")
    assert await store.settle([done(x)]) == [True]
    assert by_key(await store.claim(["a"], limit=20, lease_ms=LEASE)) == {"x": 1}


async def test_per_key_rate_caps_starts_of_each_key(
    store: JobStore, make_job: MakeJob, passage: Passage
) -> None:
    window = passage.guard_ms + 500
    await gates(store).set_type_limits("a", TypeLimits(key_rate=2, key_rate_interval_ms=window))
    await store.add([keyed(make_job, key) for key in ("x", "y", "z") for _ in range(4)])
    first = await store.claim(["a"], limit=50, lease_ms=LEASE)
    assert by_key(first) == {"x": 2, "y": 2, "z": 2}
    assert await store.settle([done(lease) for lease in first]) == [True] * 6
    # Settling gives no start back: the rate counts starts.
    assert await store.claim(["a"], limit=50, lease_ms=LEASE) == []
    await passage.advance(window + 1)
    assert by_key(await store.claim(["a"], limit=50, lease_ms=LEASE)) == {"x": 2, "y": 2, "z": 2}


async def test_type_and_key_limits_both_hold(store: JobStore, make_job: MakeJob) -> None:
    await gates(store).set_type_limits("a", TypeLimits(concurrency=3, key_concurrency=2))
    await store.add([keyed(make_job, key) for key in ("x", "y") for _ in range(4)])
    first = await store.claim(["a"], limit=20, lease_ms=LEASE)
    assert len(first) == 3
    assert max(by_key(first).values()) == 2


async def test_turns_across_keys_do_not_let_a_big_key_starve_a_small_one(
    store: JobStore, make_job: MakeJob
) -> None:
    # Enqueued first, the big key's 300 jobs are all due before the small key's.
    await store.add([keyed(make_job, "big") for _ in range(300)])
    await store.add([keyed(make_job, "small") for _ in range(10)])
    taken: list[Lease] = []
    for _ in range(10):
        taken += await store.claim(["a"], limit=2, lease_ms=LEASE)
    counts = by_key(taken)
    assert counts["small"] == 10
    assert counts["big"] == 10


async def test_turns_share_evenly_across_many_keys(store: JobStore, make_job: MakeJob) -> None:
    keys = [f"k{i}" for i in range(20)]
    await store.add([keyed(make_job, key) for key in keys for _ in range(10)])
    taken: list[Lease] = []
    for _ in range(20):
        taken += await store.claim(["a"], limit=3, lease_ms=LEASE)
    counts = by_key(taken)
    assert len(taken) == 60
    assert set(counts.values()) == {3}


async def test_jobs_without_a_key_take_turns_with_the_keys(
    store: JobStore, make_job: MakeJob
) -> None:
    await store.add([keyed(make_job, None) for _ in range(50)])
    await store.add([keyed(make_job, "x") for _ in range(50)])
    taken: list[Lease] = []
    for _ in range(10):
        taken += await store.claim(["a"], limit=2, lease_ms=LEASE)
    assert by_key(taken) == {None: 10, "x": 10}


async def test_the_lane_without_a_key_moves_back_only_when_served(
    store: JobStore, make_job: MakeJob
) -> None:
    """The '' lane keeps its turn like a key: a visit that found nothing due does not send it back.

    x, x, y, y: the first claim visits the empty lane, then serves x (x goes to
    the back); a plain job enqueued next is first in turn, ahead of y.
    """
    await store.add([keyed(make_job, key) for key in ("x", "x", "y", "y")])
    assert by_key(await store.claim(["a"], limit=1, lease_ms=LEASE)) == {"x": 1}
    await store.add([make_job("a")])
    assert by_key(await store.claim(["a"], limit=1, lease_ms=LEASE)) == {None: 1}
    # Served, the lane goes to the back: y, then x, then nothing without a key.
    third = await store.claim(["a"], limit=3, lease_ms=LEASE)
    assert [lease.job.limit_key for lease in third] == ["y", "x", "y"]


async def test_a_delayed_keyed_job_is_claimed_when_due(
    store: JobStore, make_job: MakeJob, passage: Passage
) -> None:
    delay = passage.guard_ms + 500
    later = keyed(make_job, "x", delay_ms=delay)
    await store.add([later])
    assert await store.claim(["a"], limit=5, lease_ms=LEASE) == []
    stats = (await store.stats()).types
    assert [(row.type, row.pending, row.scheduled) for row in stats] == [("a", 0, 1)]
    await passage.advance(delay + 1)
    (lease,) = await store.claim(["a"], limit=5, lease_ms=LEASE)
    assert lease.job.id == later.id


async def test_keyed_jobs_are_listed_counted_cancelled_and_retried(
    store: JobStore, make_job: MakeJob
) -> None:
    jobs = [keyed(make_job, key) for key in ("x", "x", "y")]
    plain = keyed(make_job, None)
    await store.add([*jobs, plain])
    page = await store.list_jobs(JobQuery(type="a", status=JobStatus.PENDING))
    assert sorted(job.id for job in page.jobs) == sorted([*(job.id for job in jobs), plain.id])
    assert (await store.stats()).types[0].pending == 4
    cancelled = await store.cancel(jobs[0].id)
    assert cancelled is not None
    assert cancelled.status is JobStatus.CANCELLED
    leases = await store.claim(["a"], limit=10, lease_ms=LEASE)
    assert sorted(lease.job.id for lease in leases) == sorted([jobs[1].id, jobs[2].id, plain.id])
    failed = next(lease for lease in leases if lease.job.id == jobs[1].id)
    outcome = Outcome(job_id=failed.job.id, token=failed.token, kind=OutcomeKind.FAIL, error="x")
    assert await store.settle([outcome]) == [True]
    assert isinstance(store, AdminStore)
    retried = await store.retry(jobs[1].id)
    assert retried is not None
    assert retried.status is JobStatus.PENDING
    (again,) = await store.claim(["a"], limit=10, lease_ms=LEASE)
    assert again.job.id == jobs[1].id
    assert again.job.limit_key == "x"


async def test_a_retried_keyed_job_goes_back_to_its_key(store: JobStore, make_job: MakeJob) -> None:
    await gates(store).set_type_limits("a", TypeLimits(key_concurrency=1))
    await store.add([keyed(make_job, "x"), keyed(make_job, "x")])
    (lease,) = await store.claim(["a"], limit=5, lease_ms=LEASE)
    retry = Outcome(job_id=lease.job.id, token=lease.token, kind=OutcomeKind.RETRY)
    assert await store.settle([retry]) == [True]
    # The slot freed with the retry; one of the key's two jobs starts, not both.
    assert len(await store.claim(["a"], limit=5, lease_ms=LEASE)) == 1


async def test_bad_limit_keys_and_per_key_limits_are_refused_with_no_change(
    store: JobStore,
) -> None:
    service = JobService(store, clock=SystemClock(), ids=UuidV7Generator())
    for key, priority in (("", 0), ("x" * 129, 0), ("a b", 0), ("tab\there", 0), ("x", 5)):
        with pytest.raises(InvalidJob) as raised:
            await service.enqueue(EnqueueRequest(type="a", limit_key=key, priority=priority))
        assert raised.value.field == "limit_key"
    gate = GateService(gates(store))
    for bad in (
        TypeLimits(key_concurrency=0),
        TypeLimits(key_rate=0),
        TypeLimits(key_rate=1_000_001),
        TypeLimits(key_rate=5, key_rate_interval_ms=0),
    ):
        with pytest.raises(InvalidJob):
            await gate.set_type_limits("a", bad)
    assert await gate.type_limits("a") == TypeLimits()
    assert (await store.stats()).types == []


async def test_keys_at_their_limit_do_not_hide_a_free_key_behind_them(
    store: JobStore, make_job: MakeJob
) -> None:
    # 150 keys each running its one allowed job, then one more job of each:
    # all held. A fresh key's job comes after them in the turns.
    await gates(store).set_type_limits("a", TypeLimits(key_concurrency=1))
    held = [f"h{i:03d}" for i in range(150)]
    await store.add([keyed(make_job, key) for key in held])
    running = await store.claim(["a"], limit=1_000, lease_ms=LEASE)
    assert len(running) == 150
    await store.add([keyed(make_job, key) for key in held])
    await store.add([keyed(make_job, "fresh")])
    # A claim visits a bounded number of keys (its share plus 64 on Redis), sets
    # each held one aside, and says work is due now: a few claims reach it.
    found: list[Lease] = []
    for _ in range(5):
        found = await store.claim(["a"], limit=2, lease_ms=LEASE)
        if found:
            break
    assert by_key(found) == {"fresh": 1}


async def test_a_bulk_cancel_and_retry_reach_keyed_jobs(store: JobStore, make_job: MakeJob) -> None:
    assert isinstance(store, AdminStore)
    await store.add([keyed(make_job, key) for key in ("x", "x", "y", None)])
    pending = JobFilter(type="a", status=JobStatus.PENDING)
    cancelled = await store.bulk(BulkAction.CANCEL, pending, limit=100, cursor="")
    assert cancelled.changed == 4
    assert await store.claim(["a"], limit=10, lease_ms=LEASE) == []
    retry = JobFilter(type="a", status=JobStatus.CANCELLED)
    assert (await store.bulk(BulkAction.RETRY, retry, limit=100, cursor="")).changed == 4
    leases = await store.claim(["a"], limit=10, lease_ms=LEASE)
    assert by_key(leases) == {"x": 2, "y": 1, None: 1}


async def test_raising_a_per_key_limit_applies_to_keys_held_by_the_old_one(
    store: JobStore, make_job: MakeJob
) -> None:
    await gates(store).set_type_limits("a", TypeLimits(key_concurrency=1))
    await store.add([keyed(make_job, key) for key in ("x", "y") for _ in range(3)])
    assert by_key(await store.claim(["a"], limit=10, lease_ms=LEASE)) == {"x": 1, "y": 1}
    # Both keys are held now (and set aside on Redis): a raise reaches them at once.
    assert await store.claim(["a"], limit=10, lease_ms=LEASE) == []
    await gates(store).set_type_limits("a", TypeLimits(key_concurrency=2))
    assert by_key(await store.claim(["a"], limit=10, lease_ms=LEASE)) == {"x": 1, "y": 1}
    await gates(store).set_type_limits("a", TypeLimits())
    assert by_key(await store.claim(["a"], limit=10, lease_ms=LEASE)) == {"x": 1, "y": 1}


async def test_a_claim_that_takes_a_types_last_keyed_job_still_takes_its_plain_ones(
    store: JobStore, make_job: MakeJob
) -> None:
    # The claim's turn empties the type's keys, so the type is plain again in
    # the same claim: its later rounds (another type shares the limit, so there
    # are several) must take the plain jobs left. Found by the keyed machine.
    await store.add([keyed(make_job, None, "b"), keyed(make_job, None, "b")])
    await store.add([keyed(make_job, "acme", "b")])
    leases = await store.claim(["a", "b"], limit=3, lease_ms=LEASE)
    assert by_key(leases) == Counter({None: 2, "acme": 1})

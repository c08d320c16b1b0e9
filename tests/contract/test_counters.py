"""The JobCounters contract (cumulative counters and their history), on every store.

Each counter moves in the step that makes its transition, so after any
sequence of operations the counters equal what happened, exactly.
"""

from __future__ import annotations

import pytest

from jobqueue.domain import (
    AdminStore,
    BulkAction,
    JobCounters,
    JobFilter,
    JobQuery,
    JobStatus,
    JobStore,
    Outcome,
    OutcomeKind,
    TypeCounters,
)
from tests.contract.conftest import MakeJob, MakeStore, Passage

LEASE = 30_000
FOREVER_MS = 10**12
"""A sampling interval no test crosses a bucket boundary of."""


def counting(store: JobStore) -> JobCounters:
    assert isinstance(store, JobCounters)
    return store


async def test_every_transition_is_counted_once_by_type(
    store: JobStore, make_job: MakeJob, passage: Passage
) -> None:
    assert await counting(store).counters() == []
    first = make_job("a", idempotency_key="once")
    await store.add([first, *(make_job("a") for _ in range(5)), make_job("b")])
    # An idempotency key already known stores nothing: nothing enqueued.
    await store.add([make_job("a", idempotency_key="once")])
    leases = await store.claim(["a"], limit=5, lease_ms=LEASE)
    assert len(leases) == 5
    done, failed, retried, released, cancelled = leases
    assert (
        await store.settle(
            [
                Outcome(job_id=done.job.id, token=done.token, kind=OutcomeKind.COMPLETE),
                Outcome(job_id=failed.job.id, token=failed.token, kind=OutcomeKind.FAIL),
                Outcome(job_id=retried.job.id, token=retried.token, kind=OutcomeKind.RETRY),
                Outcome(job_id=released.job.id, token=released.token, kind=OutcomeKind.RELEASE),
            ]
        )
        == [True] * 4
    )
    # A running job cancelled, then retried by its worker: it ends CANCELLED, not retried.
    await store.cancel(cancelled.job.id)
    assert await store.settle(
        [Outcome(job_id=cancelled.job.id, token=cancelled.token, kind=OutcomeKind.RETRY)]
    ) == [True]
    [pending_b] = await store.claim(["b"], limit=1, lease_ms=LEASE)
    await store.settle(
        [Outcome(job_id=pending_b.job.id, token=pending_b.token, kind=OutcomeKind.RELEASE)]
    )
    await store.cancel(pending_b.job.id)
    # A settle of a lease no longer held changes nothing, and counts nothing.
    assert await store.settle(
        [Outcome(job_id=done.job.id, token=done.token, kind=OutcomeKind.COMPLETE)]
    ) == [False]

    assert await counting(store).counters() == [
        TypeCounters(type="a", enqueued=6, completed=1, failed=1, retried=1, cancelled=1),
        TypeCounters(type="b", enqueued=1, cancelled=1),
    ]


async def test_expired_leases_are_counted_and_a_last_attempt_counts_as_failed(
    store: JobStore, make_job: MakeJob, passage: Passage
) -> None:
    job = make_job("slow", max_attempts=1)
    await store.add([job])
    [lease] = await store.claim(["slow"], limit=1, lease_ms=50)
    # Confirmed, so its expiry spends the one attempt.
    await store.renew([(lease.job.id, lease.token)], lease_ms=50)
    await passage.advance(60)
    assert await store.requeue_expired() == 1
    stored = await store.get(job.id)
    assert stored is not None
    assert stored.status is JobStatus.FAILED
    assert await counting(store).counters() == [
        TypeCounters(type="slow", enqueued=1, failed=1, leases_expired=1)
    ]


async def test_one_sample_per_bucket_holding_the_totals(store: JobStore, make_job: MakeJob) -> None:
    counters = counting(store)
    assert await counters.samples() == []
    await store.add([make_job("a"), make_job("a"), make_job("b")])
    [lease] = await store.claim(["b"], limit=1, lease_ms=LEASE)
    await store.settle([Outcome(job_id=lease.job.id, token=lease.token, kind=OutcomeKind.FAIL)])
    assert await counters.record_sample(interval_ms=FOREVER_MS, keep=10) is True
    # Other servers sampling the same bucket find it written.
    assert await counters.record_sample(interval_ms=FOREVER_MS, keep=10) is False
    await store.add([make_job("a")])
    assert await counters.record_sample(interval_ms=FOREVER_MS, keep=10) is False
    [sample] = await counters.samples()
    assert (sample.enqueued, sample.failed, sample.completed) == (3, 1, 0)
    assert sample.at_ms % FOREVER_MS == 0
    assert await counters.samples(since_ms=sample.at_ms + 1) == []


async def test_the_history_keeps_the_newest_samples_only(
    store: JobStore, make_job: MakeJob, passage: Passage
) -> None:
    counters = counting(store)
    for n in range(4):
        await store.add([make_job("a")])
        assert await counters.record_sample(interval_ms=5, keep=2) is True
        if n < 3:
            await passage.advance(6)
    kept = await counters.samples()
    assert [sample.enqueued for sample in kept] == [3, 4]
    assert kept[0].at_ms < kept[1].at_ms


async def test_bad_sampling_settings_are_refused(store: JobStore) -> None:
    with pytest.raises(ValueError, match="positive"):
        await counting(store).record_sample(interval_ms=0, keep=10)


async def test_counters_survive_a_new_store_on_the_same_data(
    make_store: MakeStore, make_job: MakeJob, backend: str
) -> None:
    if backend == "memory":
        pytest.skip("the in-memory store keeps nothing across instances, by design")
    first = make_store()
    await first.add([make_job("a")])
    await counting(first).record_sample(interval_ms=FOREVER_MS, keep=10)
    await first.close()
    again = make_store()
    assert await counting(again).counters() == [TypeCounters(type="a", enqueued=1)]
    assert len(await counting(again).samples()) == 1


async def test_a_bulk_cancel_counts_each_job_it_cancels(store: JobStore, make_job: MakeJob) -> None:
    assert isinstance(store, AdminStore)
    await store.add([make_job("z") for _ in range(3)] + [make_job("y")])
    cursor, changed = "", 0
    while True:
        result = await store.bulk(BulkAction.CANCEL, JobFilter(type="z"), limit=2, cursor=cursor)
        changed += result.changed
        cursor = result.next_cursor
        if not cursor:
            break
    assert changed == 3
    assert await counting(store).counters() == [
        TypeCounters(type="y", enqueued=1),
        TypeCounters(type="z", enqueued=3, cancelled=3),
    ]


async def test_an_operators_retry_counts_as_enqueued_so_depth_stays_true(
    store: JobStore, make_job: MakeJob
) -> None:
    admin = store
    assert isinstance(admin, AdminStore)
    jobs = [make_job("rv") for _ in range(3)]
    await store.add(jobs)
    leases = await store.claim(["rv"], limit=2, lease_ms=LEASE)
    await store.settle(
        [Outcome(job_id=lease.job.id, token=lease.token, kind=OutcomeKind.FAIL) for lease in leases]
    )
    await admin.retry(leases[0].job.id)
    await admin.bulk(BulkAction.RETRY, JobFilter(type="rv"), limit=100, cursor="")
    (lease,) = await store.claim(["rv"], limit=1, lease_ms=LEASE)
    await store.settle([Outcome(job_id=lease.job.id, token=lease.token, kind=OutcomeKind.COMPLETE)])
    (row,) = await counting(store).counters()
    assert (row.enqueued, row.completed, row.failed) == (5, 1, 2)
    live = 0
    for status in (JobStatus.PENDING, JobStatus.RUNNING):
        live += len((await store.list_jobs(JobQuery(type="rv", status=status))).jobs)
    assert row.enqueued - row.completed - row.failed - row.cancelled == live == 2

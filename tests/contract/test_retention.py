"""Retention on every store: finished jobs and batch keys are forgotten, pending jobs never.

Each test builds its own store with a retention it can wait out: on Redis the
wait is real, so the retention is the store's "not yet" guard plus a little
(about 1.4 s); on the memory store's manual clock it is a few hundred ms,
crossed to the millisecond.
"""

from __future__ import annotations

from collections.abc import Sequence

from jobqueue.domain import Job, JobQuery, Outcome, OutcomeKind
from tests.contract.conftest import MakeJob, MakeStore, Passage

LEASE = 30_000
FAR_MS = 3_600_000
"""A due time no test reaches."""


def complete(job_id: str, token: str) -> Outcome:
    return Outcome(job_id=job_id, token=token, kind=OutcomeKind.COMPLETE)


def ids(jobs: Sequence[Job]) -> list[str]:
    return [job.id for job in jobs]


def short_retention(passage: Passage) -> int:
    """A retention a test can wait out: 300 ms past the store's "not yet" guard."""
    return passage.guard_ms + 300


async def test_finished_jobs_expire_after_retention_and_pending_ones_never(
    make_store: MakeStore, make_job: MakeJob, passage: Passage
) -> None:
    retention = short_retention(passage)
    store = make_store(retention_ms=retention)
    done, keyed = make_job(), make_job(idempotency_key="once")
    waiting = make_job("later", delay_ms=FAR_MS)
    (stored_waiting,) = await store.add([waiting])
    await store.add([done, keyed])
    leases = await store.claim(["email"], limit=2, lease_ms=LEASE)
    await store.settle([complete(lease.job.id, lease.token) for lease in leases])
    await passage.advance(retention - passage.guard_ms - 1)
    assert await store.get(done.id) is not None
    await passage.advance(passage.guard_ms + 1)
    await store.requeue_expired()
    assert await store.get(done.id) is None
    assert await store.get(keyed.id) is None
    assert ids((await store.list_jobs(JobQuery())).jobs) == [waiting.id]
    assert [row.type for row in (await store.stats()).types] == ["later"]
    assert await store.get(waiting.id) == stored_waiting
    fresh = make_job(idempotency_key="once")
    assert ids(await store.add([fresh])) == [fresh.id]


async def test_a_batch_key_is_forgotten_after_the_retention_period(
    make_store: MakeStore, make_job: MakeJob, passage: Passage
) -> None:
    retention = short_retention(passage)
    store = make_store(retention_ms=retention)
    first = [make_job(delay_ms=FAR_MS)]
    await store.add(first, batch_key="nightly")
    await passage.advance(retention - passage.guard_ms - 1)
    assert ids(await store.add([make_job()], batch_key="nightly")) == ids(first)
    await passage.advance(passage.guard_ms + 1)
    fresh = [make_job(delay_ms=FAR_MS)]
    assert ids(await store.add(fresh, batch_key="nightly")) == ids(fresh)
    assert ids(await store.add([make_job()], batch_key="nightly")) == ids(fresh)


async def test_a_batch_key_whose_jobs_are_gone_stores_anew(
    make_store: MakeStore, make_job: MakeJob, passage: Passage
) -> None:
    # A job keyed by an earlier call can finish, and expire, before the batch
    # key: the key must be stored at least a guard after the job finished, and
    # the job must still be there then, so the retention spans two guards.
    half = passage.guard_ms + 100
    store = make_store(retention_ms=2 * half)
    done = make_job(idempotency_key="early")
    await store.add([done])
    (lease,) = await store.claim(["email"], limit=1, lease_ms=LEASE)
    await store.settle([complete(lease.job.id, lease.token)])
    await passage.advance(half)
    assert (await store.add([make_job(idempotency_key="early")], batch_key="b"))[0].id == done.id
    await passage.advance(half)
    await store.requeue_expired()
    assert await store.get(done.id) is None
    fresh = make_job(idempotency_key="early")
    assert ids(await store.add([fresh], batch_key="b")) == [fresh.id]

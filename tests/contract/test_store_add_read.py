"""The JobStore contract, part one: adding jobs and reading them back (get, list, stats, watch).

Every adapter must pass every test here; claims and settles are in
test_store_claim_settle.py, cancels in test_store_cancel.py.

Times are the store's own (Redis's TIME, or the memory store's clock): a test
reads them through ``passage`` around a call and asserts bounds, which on the
memory store's manual clock are exact. See conftest.py for what a wait on
Redis can and cannot prove.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace

import pytest

from jobqueue.domain import (
    InvalidJob,
    Job,
    JobNotFound,
    JobQuery,
    JobStatus,
    JobStore,
    Outcome,
    OutcomeKind,
)
from tests.contract.conftest import MakeJob, Passage

LEASE = 30_000


def complete(job_id: str, token: str, result: bytes | None = None) -> Outcome:
    return Outcome(job_id=job_id, token=token, kind=OutcomeKind.COMPLETE, result=result)


def ids(jobs: Sequence[Job]) -> list[str]:
    return [job.id for job in jobs]


def assert_stored_as(stored: Job, job: Job, before: int, after: int) -> None:
    """``stored`` is ``job`` as the store keeps it: created, and if due at once also due,
    at the store's now (between ``before`` and ``after``), everything else unchanged."""
    assert before <= stored.created_at <= after
    due_at_once = job.execution_time_ms == job.created_at
    expected = replace(
        job,
        created_at=stored.created_at,
        updated_at=stored.created_at,
        execution_time_ms=stored.created_at if due_at_once else job.execution_time_ms,
    )
    assert stored == expected


# -- add and get ----------------------------------------------------------------


@pytest.mark.parametrize("delay_ms", [0, 5_000])
async def test_added_job_reads_back_as_stored(
    store: JobStore, make_job: MakeJob, passage: Passage, delay_ms: int
) -> None:
    job = make_job("email", b"\x00\xffbinary", delay_ms=delay_ms, max_attempts=3)
    before = await passage.now_ms()
    (added,) = await store.add([job])
    after = await passage.now_ms()
    assert_stored_as(added, job, before, after)
    assert await store.get(job.id) == added


async def test_unknown_id_reads_as_none(store: JobStore, make_job: MakeJob) -> None:
    assert await store.get(make_job().id) is None


async def test_empty_payload_and_defaults_round_trip(store: JobStore, make_job: MakeJob) -> None:
    job = make_job("t", b"")
    await store.add([job])
    stored = await store.get(job.id)
    assert stored is not None
    assert stored.payload == b""
    assert stored.max_attempts is None
    assert stored.result is None
    assert stored.last_error is None
    assert stored.attempts == 0


async def test_idempotency_key_returns_the_first_job(store: JobStore, make_job: MakeJob) -> None:
    first = make_job(idempotency_key="order-42")
    again = make_job(payload=b"other", idempotency_key="order-42")
    (stored,) = await store.add([first])
    assert stored.id == first.id
    assert await store.add([again]) == [stored]
    assert await store.get(again.id) is None
    page = await store.list_jobs(JobQuery())
    assert [job.id for job in page.jobs] == [first.id]


async def test_idempotency_key_repeated_within_one_batch(
    store: JobStore, make_job: MakeJob
) -> None:
    a, b, c = make_job(idempotency_key="k"), make_job(idempotency_key="k"), make_job()
    assert ids(await store.add([a, b, c])) == [a.id, a.id, c.id]


async def test_a_batch_key_returns_the_first_batch_as_it_is_now(
    store: JobStore, make_job: MakeJob
) -> None:
    first = [make_job(), make_job(job_type="sms")]
    assert ids(await store.add(first, batch_key="import-7")) == ids(first)
    await store.claim(["email"], limit=1, lease_ms=LEASE)
    retry = [make_job(), make_job(job_type="sms"), make_job()]
    again = await store.add(retry, batch_key="import-7")
    assert ids(again) == ids(first)
    assert again[0].status is JobStatus.RUNNING
    assert all([await store.get(job.id) is None for job in retry])
    assert (await store.stats()).total.pending == 1


async def test_batch_keys_name_batches_not_jobs(store: JobStore, make_job: MakeJob) -> None:
    keyed = make_job(idempotency_key="shared")
    assert ids(await store.add([keyed], batch_key="shared")) == [keyed.id]
    other = make_job()
    assert ids(await store.add([other], batch_key="other")) == [other.id]
    inner, plain = make_job(idempotency_key="shared"), make_job()
    assert ids(await store.add([inner, plain], batch_key="third")) == [keyed.id, plain.id]
    assert (await store.add([make_job(idempotency_key="shared")]))[0].id == keyed.id


# -- list and stats -------------------------------------------------------------


async def test_list_pages_through_every_match_once(
    store: JobStore, make_job: MakeJob, passage: Passage
) -> None:
    jobs = [make_job(job_type, delay_ms=i) for i in range(7) for job_type in ("b", "a")]
    await store.add(jobs)
    leases = await store.claim(["a"], limit=2, lease_ms=LEASE)
    await store.settle([complete(leases[0].job.id, leases[0].token)])
    await passage.advance(1)
    seen: list[str] = []
    cursor = ""
    for _ in range(20):
        page = await store.list_jobs(JobQuery(limit=3, cursor=cursor))
        assert len(page.jobs) <= 3
        seen += [job.id for job in page.jobs]
        cursor = page.next_cursor
        if not cursor:
            break
    assert sorted(seen) == sorted(job.id for job in jobs)
    assert len(seen) == len(jobs)
    statuses = [(await store.get(job_id)).status for job_id in seen]  # type: ignore[union-attr]
    assert statuses == sorted(statuses)


async def test_list_filters_by_type_and_status(store: JobStore, make_job: MakeJob) -> None:
    a1, a2, b1 = make_job("a", delay_ms=-2), make_job("a", delay_ms=-1), make_job("b")
    await store.add([a1, a2, b1])
    await store.claim(["a"], limit=1, lease_ms=LEASE)
    pending_a = await store.list_jobs(JobQuery(type="a", status=JobStatus.PENDING))
    assert [job.id for job in pending_a.jobs] == [a2.id]
    running = await store.list_jobs(JobQuery(status=JobStatus.RUNNING))
    assert [job.id for job in running.jobs] == [a1.id]
    assert [job.id for job in (await store.list_jobs(JobQuery(type="b"))).jobs] == [b1.id]
    assert (await store.list_jobs(JobQuery(status=JobStatus.FAILED))).jobs == []


async def test_list_rejects_a_forged_cursor(store: JobStore) -> None:
    with pytest.raises(InvalidJob):
        await store.list_jobs(JobQuery(cursor="not-a-cursor"))


async def test_stats_count_each_status(store: JobStore, make_job: MakeJob) -> None:
    await store.add([make_job("a") for _ in range(4)] + [make_job("a", delay_ms=10_000)])
    await store.add([make_job("b")])
    leases = await store.claim(["a"], limit=3, lease_ms=LEASE)
    await store.settle(
        [
            complete(leases[0].job.id, leases[0].token),
            Outcome(job_id=leases[1].job.id, token=leases[1].token, kind=OutcomeKind.FAIL),
        ]
    )
    pending_b = (await store.list_jobs(JobQuery(type="b"))).jobs[0]
    await store.cancel(pending_b.id)
    stats = {row.type: row for row in (await store.stats()).types}
    a, b = stats["a"], stats["b"]
    assert (a.pending, a.scheduled, a.running, a.completed, a.failed, a.cancelled) == (
        1,
        1,
        1,
        1,
        1,
        0,
    )
    assert (b.pending, b.cancelled) == (0, 1)


# -- watch ----------------------------------------------------------------------


async def test_watch_follows_a_job_to_its_end(store: JobStore, make_job: MakeJob) -> None:
    job = make_job()
    await store.add([job])
    seen: list[JobStatus] = []
    first_seen = asyncio.Event()
    running_seen = asyncio.Event()

    async def follow() -> None:
        async for update in store.watch(job.id):
            seen.append(update.status)
            first_seen.set()
            if update.status is JobStatus.RUNNING:
                running_seen.set()

    watcher = asyncio.create_task(follow())
    await asyncio.wait_for(first_seen.wait(), 5)
    (lease,) = await store.claim(["email"], limit=1, lease_ms=LEASE)
    # RUNNING is seen before the settle (Redis's tell itself: tests/redis/test_claim_writes.py).
    await asyncio.wait_for(running_seen.wait(), 5)
    await store.settle([complete(job.id, lease.token)])
    await asyncio.wait_for(watcher, 5)
    assert seen[0] is JobStatus.PENDING
    assert seen[-1] is JobStatus.COMPLETED
    assert seen == sorted(seen)


async def test_watch_of_unknown_job(store: JobStore, make_job: MakeJob) -> None:
    with pytest.raises(JobNotFound):
        async for _ in store.watch(make_job().id):
            pass

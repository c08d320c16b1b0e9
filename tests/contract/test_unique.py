"""The unique-jobs contract, on every store: a key, its scope, and the conflict policy.

A unique key locks while its holder is in scope (PENDING; PENDING or RUNNING;
or a debounce window while PENDING) and is released by the same atomic step
that moves the holder out of scope, so no lock outlives its job.
"""

from __future__ import annotations

import dataclasses

import pytest

from jobqueue.domain import (
    AdminStore,
    Job,
    JobStatus,
    JobStore,
    OnConflict,
    Outcome,
    OutcomeKind,
    UniqueConflict,
    UniqueRule,
    UniqueScope,
)
from jobqueue.redis._shards import shard_of_type
from tests.contract.conftest import CLUSTER_SHARDS, MakeJob, Passage

LEASE = 30_000


def unique(
    job: Job,
    key: str = "sync:42",
    *,
    scope: UniqueScope = UniqueScope.ACTIVE,
    on_conflict: OnConflict = OnConflict.RETURN_EXISTING,
    window_ms: int = 0,
) -> Job:
    rule = UniqueRule(key=key, scope=scope, on_conflict=on_conflict, window_ms=window_ms)
    return dataclasses.replace(job, unique=rule)


async def test_a_held_key_returns_the_holder_and_stores_nothing(
    store: JobStore, make_job: MakeJob
) -> None:
    (first,) = await store.add([unique(make_job("a"))])
    (second,) = await store.add([unique(make_job("a", b"other"))])
    assert second.id == first.id
    assert second.unique_key == "sync:42"
    assert len(await store.claim(["a"], limit=10, lease_ms=LEASE)) == 1


async def test_reject_raises_with_the_holder_and_rejects_the_whole_batch(
    store: JobStore, make_job: MakeJob
) -> None:
    (holder,) = await store.add([unique(make_job("a"))])
    # Of one type, so in one shard: a batch over several shards is atomic per shard.
    bystander = make_job("a")
    with pytest.raises(UniqueConflict) as caught:
        await store.add([bystander, unique(make_job("a"), on_conflict=OnConflict.REJECT)])
    assert caught.value.holder_id == holder.id
    assert caught.value.key == "sync:42"
    assert await store.get(bystander.id) is None


async def test_replace_cancels_a_pending_holder_and_takes_the_key(
    store: JobStore, make_job: MakeJob
) -> None:
    (old,) = await store.add([unique(make_job("a"))])
    (new,) = await store.add([unique(make_job("a", b"v2"), on_conflict=OnConflict.REPLACE)])
    assert new.id != old.id
    replaced = await store.get(old.id)
    assert replaced is not None
    assert replaced.status is JobStatus.CANCELLED
    assert replaced.last_error == f"replaced by job {new.id}"
    leases = await store.claim(["a"], limit=10, lease_ms=LEASE)
    assert [lease.job.id for lease in leases] == [new.id]
    assert leases[0].job.payload == b"v2"


async def test_replace_refuses_a_running_holder(store: JobStore, make_job: MakeJob) -> None:
    (holder,) = await store.add([unique(make_job("a"))])
    await store.claim(["a"], limit=1, lease_ms=LEASE)
    with pytest.raises(UniqueConflict):
        await store.add([unique(make_job("a"), on_conflict=OnConflict.REPLACE)])
    job = await store.get(holder.id)
    assert job is not None
    assert job.status is JobStatus.RUNNING


async def test_active_scope_holds_while_running_and_frees_at_finish(
    store: JobStore, make_job: MakeJob
) -> None:
    (holder,) = await store.add([unique(make_job("a"))])
    (lease,) = await store.claim(["a"], limit=1, lease_ms=LEASE)
    (again,) = await store.add([unique(make_job("a"))])
    assert again.id == holder.id
    assert await store.settle(
        [Outcome(job_id=holder.id, token=lease.token, kind=OutcomeKind.COMPLETE)]
    ) == [True]
    (fresh,) = await store.add([unique(make_job("a"))])
    assert fresh.id != holder.id


async def test_active_scope_survives_a_retry(store: JobStore, make_job: MakeJob) -> None:
    (holder,) = await store.add([unique(make_job("a"))])
    (lease,) = await store.claim(["a"], limit=1, lease_ms=LEASE)
    retry = Outcome(job_id=holder.id, token=lease.token, kind=OutcomeKind.RETRY, error="boom")
    assert await store.settle([retry]) == [True]
    (again,) = await store.add([unique(make_job("a"), on_conflict=OnConflict.RETURN_EXISTING)])
    assert again.id == holder.id


async def test_pending_scope_frees_the_key_at_claim(store: JobStore, make_job: MakeJob) -> None:
    (holder,) = await store.add([unique(make_job("a"), scope=UniqueScope.PENDING)])
    (again,) = await store.add([unique(make_job("a"), scope=UniqueScope.PENDING)])
    assert again.id == holder.id
    await store.claim(["a"], limit=1, lease_ms=LEASE)
    (second,) = await store.add([unique(make_job("a"), scope=UniqueScope.PENDING)])
    assert second.id != holder.id


async def test_cancel_frees_the_key(store: JobStore, make_job: MakeJob) -> None:
    (holder,) = await store.add([unique(make_job("a"), on_conflict=OnConflict.REJECT)])
    await store.cancel(holder.id)
    (fresh,) = await store.add([unique(make_job("a"), on_conflict=OnConflict.REJECT)])
    assert fresh.id != holder.id


async def test_a_lease_that_expires_on_its_last_attempt_frees_the_key(
    store: JobStore, make_job: MakeJob, passage: Passage
) -> None:
    (holder,) = await store.add([unique(make_job("a", max_attempts=1))])
    (lease,) = await store.claim(["a"], limit=1, lease_ms=100)
    # Confirm the lease so that its expiry counts as the last attempt.
    await store.renew([(holder.id, lease.token)], lease_ms=100)
    await passage.advance(150)
    assert await store.requeue_expired() == 1
    job = await store.get(holder.id)
    assert job is not None
    assert job.status is JobStatus.FAILED
    (fresh,) = await store.add([unique(make_job("a"))])
    assert fresh.id != holder.id


async def test_debounce_holds_for_its_window_only(
    store: JobStore, make_job: MakeJob, passage: Passage
) -> None:
    window = 2 * passage.guard_ms + 200

    def debounced(job: Job) -> Job:
        return unique(job, scope=UniqueScope.DEBOUNCE, window_ms=window)

    (holder,) = await store.add([debounced(make_job("a", delay_ms=3_600_000))])
    (again,) = await store.add([debounced(make_job("a"))])
    assert again.id == holder.id
    await passage.advance(window)
    (fresh,) = await store.add([debounced(make_job("a"))])
    assert fresh.id != holder.id


async def test_debounce_with_replace_keeps_the_latest(store: JobStore, make_job: MakeJob) -> None:
    def debounced(job: Job) -> Job:
        return unique(
            job, scope=UniqueScope.DEBOUNCE, window_ms=60_000, on_conflict=OnConflict.REPLACE
        )

    stored = [(await store.add([debounced(make_job("a", bytes([i])))]))[0] for i in range(3)]
    leases = await store.claim(["a"], limit=10, lease_ms=LEASE)
    assert [lease.job.id for lease in leases] == [stored[-1].id]
    for job in stored[:-1]:
        seen = await store.get(job.id)
        assert seen is not None
        assert seen.status is JobStatus.CANCELLED


async def test_a_batch_with_one_key_twice_stores_it_once(
    store: JobStore, make_job: MakeJob
) -> None:
    first, second = await store.add([unique(make_job("a")), unique(make_job("a"))])
    assert first.id == second.id
    with pytest.raises(UniqueConflict):
        await store.add(
            [unique(make_job("b"), "k"), unique(make_job("b"), "k", on_conflict=OnConflict.REJECT)]
        )


async def test_idempotency_key_wins_over_the_unique_key(store: JobStore, make_job: MakeJob) -> None:
    (first,) = await store.add([unique(make_job("a", idempotency_key="req-1"))])
    rejecting = unique(make_job("a", idempotency_key="req-1"), on_conflict=OnConflict.REJECT)
    (retried,) = await store.add([rejecting])
    assert retried.id == first.id


async def test_keys_are_per_key_not_per_type(store: JobStore, make_job: MakeJob) -> None:
    a, b = await store.add([unique(make_job("a"), "k1"), unique(make_job("a"), "k2")])
    assert a.id != b.id
    got = await store.get(a.id)
    assert got is not None
    assert got.unique is not None
    assert got.unique.scope is UniqueScope.ACTIVE


def admin(store: JobStore) -> AdminStore:
    assert isinstance(store, AdminStore)
    return store


async def test_a_retried_job_does_not_take_its_key_back(store: JobStore, make_job: MakeJob) -> None:
    (first,) = await store.add([unique(make_job("a"), on_conflict=OnConflict.REJECT)])
    await store.cancel(first.id)
    (second,) = await store.add([unique(make_job("a"), on_conflict=OnConflict.REJECT)])
    revived = await admin(store).retry(first.id)
    assert revived.status is JobStatus.PENDING
    # The key is still the second job's: a reject names it, not the revived one.
    with pytest.raises(UniqueConflict) as caught:
        await store.add([unique(make_job("a"), on_conflict=OnConflict.REJECT)])
    assert caught.value.holder_id == second.id
    # The revived job finishing leaves the second's lock alone.
    await store.cancel(revived.id)
    with pytest.raises(UniqueConflict):
        await store.add([unique(make_job("a"), on_conflict=OnConflict.REJECT)])


async def test_deleting_a_finished_holder_leaves_the_key_free(
    store: JobStore, make_job: MakeJob
) -> None:
    (holder,) = await store.add([unique(make_job("a"), on_conflict=OnConflict.REJECT)])
    await store.cancel(holder.id)
    await admin(store).delete(holder.id)
    (fresh,) = await store.add([unique(make_job("a"), on_conflict=OnConflict.REJECT)])
    assert fresh.id != holder.id


async def test_replace_takes_a_prioritised_holder_out_of_its_queue(
    store: JobStore, make_job: MakeJob
) -> None:
    (old,) = await store.add([dataclasses.replace(unique(make_job("a")), priority=5)])
    replacing = unique(make_job("a", b"v2"), on_conflict=OnConflict.REPLACE)
    (new,) = await store.add([replacing])
    leases = await store.claim(["a"], limit=10, lease_ms=LEASE)
    assert [lease.job.id for lease in leases] == [new.id]
    replaced = await store.get(old.id)
    assert replaced is not None
    assert replaced.status is JobStatus.CANCELLED


async def test_a_batch_replace_reports_the_job_it_replaced_cancelled(
    store: JobStore, make_job: MakeJob
) -> None:
    first, second = await store.add(
        [
            unique(make_job("a", b"v1"), on_conflict=OnConflict.REPLACE),
            unique(make_job("a", b"v2"), on_conflict=OnConflict.REPLACE),
        ]
    )
    assert first.id != second.id
    assert first.status is JobStatus.CANCELLED
    assert second.status is JobStatus.PENDING
    stored = await store.get(first.id)
    assert stored is not None
    assert stored.status is JobStatus.CANCELLED


def type_pairs() -> list[tuple[str, str]]:
    """Two types in one shard and two in different shards of the cluster backend."""
    names = [f"t{n}" for n in range(40)]
    shard = {name: shard_of_type(name, CLUSTER_SHARDS) for name in names}
    same = next((a, b) for a in names for b in names if a < b and shard[a] == shard[b])
    other = next((a, b) for a in names for b in names if shard[a] != shard[b])
    return [same, other]


@pytest.mark.parametrize("types", type_pairs(), ids=["same-shard", "other-shard"])
async def test_unique_and_idempotency_keys_are_per_job_type(
    store: JobStore, make_job: MakeJob, types: tuple[str, str]
) -> None:
    first_type, second_type = types
    (first,) = await store.add([unique(make_job(first_type), "K", on_conflict=OnConflict.REJECT)])
    (second,) = await store.add([unique(make_job(second_type), "K", on_conflict=OnConflict.REJECT)])
    assert first.id != second.id
    with pytest.raises(UniqueConflict) as caught:
        await store.add([unique(make_job(second_type), "K", on_conflict=OnConflict.REJECT)])
    assert caught.value.holder_id == second.id
    (a,) = await store.add([make_job(first_type, idempotency_key="req-1")])
    (b,) = await store.add([make_job(second_type, idempotency_key="req-1")])
    (again,) = await store.add([make_job(second_type, idempotency_key="req-1")])
    assert a.id != b.id
    assert again.id == b.id
    # Each finishes and releases its own type's lock only.
    await store.cancel(first.id)
    with pytest.raises(UniqueConflict):
        await store.add([unique(make_job(second_type), "K", on_conflict=OnConflict.REJECT)])
    (fresh,) = await store.add([unique(make_job(first_type), "K", on_conflict=OnConflict.REJECT)])
    assert fresh.id not in (first.id, second.id)

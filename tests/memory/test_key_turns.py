"""The memory store's claims do bounded work however many keys are held (issue 15's review).

A key held by its per-key limit is set aside, out of the turns, until a
settle or the sweep frees its slot (or its window or head comes due), as the
Redis store does; a claim visits at most its share plus 64 keys of a type.
Counted with the store's ``_key_visits``, not timed.
"""

from __future__ import annotations

from jobqueue.domain import Job, JobStatus, Outcome, OutcomeKind, TypeLimits, UuidV7Generator
from jobqueue.memory import MemoryJobStore

LEASE = 600_000
HELD = 500


def jobs(store: MemoryJobStore, keys: int, per_key: int) -> list[Job]:
    ids, now = UuidV7Generator(), store._clock.now_ms()
    return [
        Job(
            id=ids.new_id(),
            type="a",
            payload=b"",
            status=JobStatus.PENDING,
            execution_time_ms=now,
            created_at=now,
            updated_at=now,
            limit_key=f"k{i}",
        )
        for i in range(keys)
        for _ in range(per_key)
    ]


async def held_store() -> tuple[MemoryJobStore, list[str]]:
    """HELD keys, each with one job RUNNING at key_concurrency=1 and one waiting."""
    store = MemoryJobStore()
    await store.set_type_limits("a", TypeLimits(key_concurrency=1))
    await store.add(jobs(store, HELD, 2))
    running: list[str] = []
    for _ in range(HELD):
        before = store._key_visits
        leases = await store.claim(["a"], limit=100, lease_ms=LEASE)
        assert store._key_visits - before <= 100 + 64
        running += [lease.job.id for lease in leases]
        if len(running) >= HELD:
            break
    assert len(running) == HELD
    return store, running


async def test_a_claim_visits_at_most_its_share_plus_64_keys() -> None:
    store, _ = await held_store()
    claims = 0
    for _ in range(HELD):
        before = store._key_visits
        assert await store.claim(["a"], limit=10, lease_ms=LEASE) == []
        claims += 1
        # At most 10 + 64 keys, however many are held ('' is not counted).
        assert store._key_visits - before <= 10 + 64
        if store._key_visits == before:
            break
    # Every held key was visited once, then set aside: the claims that did it
    # are about HELD / 74, and an empty claim now visits no key.
    assert claims <= HELD // 64 + 2
    before = store._key_visits
    assert await store.claim(["a"], limit=10, lease_ms=LEASE) == []
    assert store._key_visits == before


async def test_a_settle_brings_its_key_back_at_once() -> None:
    store, running = await held_store()
    for _ in range(HELD):
        if await store.claim(["a"], limit=10, lease_ms=LEASE) == []:
            break
    for _ in range(HELD):
        before = store._key_visits
        await store.claim(["a"], limit=10, lease_ms=LEASE)
        if store._key_visits == before:
            break
    job = await store.get(running[7])
    assert job is not None
    record = store._records[running[7]]
    done = Outcome(job_id=running[7], token=record.token, kind=OutcomeKind.COMPLETE)
    assert await store.settle([done]) == [True]
    before = store._key_visits
    (started,) = await store.claim(["a"], limit=10, lease_ms=LEASE)
    assert started.job.limit_key == job.limit_key
    # The freed key alone: every other held key stays aside.
    assert store._key_visits - before == 1


class CountingStore(MemoryJobStore):
    """Counts the per-key limit checks: on the store before and after the fix alike."""

    checks = 0

    def _key_open(self, job_type: str, key: str, now: int) -> bool:
        self.checks += 1
        return super()._key_open(job_type, key, now)


async def test_empty_claims_stop_checking_held_keys() -> None:
    store = CountingStore()
    await store.set_type_limits("a", TypeLimits(key_concurrency=1))
    await store.add(jobs(store, HELD, 2))
    taken = 0
    for _ in range(HELD):
        taken += len(await store.claim(["a"], limit=100, lease_ms=LEASE))
        if taken >= HELD:
            break
    per_claim = []
    for _ in range(20):
        before = store.checks
        assert await store.claim(["a"], limit=10, lease_ms=LEASE) == []
        per_claim.append(store.checks - before)
    # Each held key is checked once, then set aside: later claims check none
    # (every one checked all HELD keys before).
    assert sum(per_claim) == HELD
    assert per_claim[-1] == 0

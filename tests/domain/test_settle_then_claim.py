"""LeaseService.settle_then_claim's own rules, over the in-memory store.

A settle that also claims must not let a bad claim change anything, and must
not lose the settle's verdicts to a claim that fails after it.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from jobqueue.domain import (
    InvalidJob,
    JobStatus,
    Lease,
    LeaseRules,
    LeaseService,
    ManualClock,
    Outcome,
    OutcomeKind,
    StoreUnavailable,
)
from jobqueue.memory import MemoryJobStore
from tests.domain.test_leasing import new_jobs


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


class ClaimsFail(MemoryJobStore):
    """A store whose claims fail as a store that just went away does; settles still apply."""

    async def claim(
        self, types: Sequence[str], *, limit: int, lease_ms: int, wait_ms: int = 0
    ) -> list[Lease]:
        raise StoreUnavailable("connection lost")


def complete(lease: Lease) -> Outcome:
    return Outcome(job_id=lease.job.id, token=lease.token, kind=OutcomeKind.COMPLETE)


@pytest.mark.parametrize(
    ("types", "fields", "at_fault"),
    [
        ([], {}, "types"),
        (["t", "bad type"], {}, "types[1]"),
        (["t"], {"limit": -1}, "max_jobs"),
        (["t"], {"lease_ms": 99}, "lease_ms"),
    ],
)
async def test_a_bad_claim_is_refused_before_anything_is_settled(
    clock: ManualClock, types: list[str], fields: dict[str, int], at_fault: str
) -> None:
    leases = LeaseService(MemoryJobStore(clock=clock))
    await leases.store.add(new_jobs(clock, 2))
    (lease,) = await leases.claim(["t"], limit=1)
    with pytest.raises(InvalidJob) as raised:
        await leases.settle_then_claim([complete(lease)], types, **{"limit": 1, **fields})
    assert raised.value.field == at_fault
    job = await leases.store.get(lease.job.id)
    assert job is not None
    assert job.status is JobStatus.RUNNING
    assert await leases.settle([complete(lease)]) == [True]


async def test_the_claim_is_capped_like_any_claim(clock: ManualClock) -> None:
    leases = LeaseService(MemoryJobStore(clock=clock), rules=LeaseRules(max_claim_jobs=5))
    await leases.store.add(new_jobs(clock, 20))
    (lease,) = await leases.claim(["t"], limit=1)
    accepted, got = await leases.settle_then_claim([complete(lease)], ["t"], limit=100)
    assert (accepted, len(got)) == ([True], 5)
    _, got = await leases.settle_then_claim([], ["t"], limit=100, max_jobs=2)
    assert len(got) == 2
    _, got = await leases.settle_then_claim([], ["t"], limit=0)
    assert len(got) == 1


async def test_a_claim_that_fails_after_the_settle_keeps_the_verdicts(clock: ManualClock) -> None:
    store = ClaimsFail(clock=clock)
    leases = LeaseService(store)
    await store.add(new_jobs(clock, 2))
    (lease,) = await MemoryJobStore.claim(store, ["t"], limit=1, lease_ms=30_000)
    assert await leases.settle_then_claim([complete(lease)], ["t"], limit=1) == ([True], [])
    job = await store.get(lease.job.id)
    assert job is not None
    assert job.status is JobStatus.COMPLETED

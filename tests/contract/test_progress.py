"""The progress contract, on every store: fenced by the lease, kept on the job, a watch event."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from jobqueue.domain import (
    InvalidJob,
    JobStore,
    Limits,
    Outcome,
    OutcomeKind,
    ProgressReport,
    ProgressService,
    ProgressStore,
)
from tests.contract.conftest import MakeJob, Passage

LEASE = 30_000


def progress(store: JobStore) -> ProgressService:
    assert isinstance(store, ProgressStore)
    return ProgressService(store, limits=Limits())


async def test_progress_is_stored_on_the_job_while_the_lease_is_held(
    store: JobStore, make_job: MakeJob
) -> None:
    job = make_job("a")
    await store.add([job])
    (lease,) = await store.claim(["a"], limit=1, lease_ms=LEASE)
    report = ProgressReport(job_id=job.id, token=lease.token, fraction=0.4, message="resizing")
    assert await progress(store).report([report]) == [True]
    seen = await store.get(job.id)
    assert seen is not None
    assert (seen.progress, seen.progress_message) == (0.4, "resizing")
    # The last value stays once the job finished.
    done = Outcome(job_id=job.id, token=lease.token, kind=OutcomeKind.COMPLETE)
    assert await store.settle([done]) == [True]
    finished = await store.get(job.id)
    assert finished is not None
    assert finished.progress == 0.4
    # A finished job's lease is no longer held: nothing changes.
    later = ProgressReport(job_id=job.id, token=lease.token, fraction=1.0)
    assert await progress(store).report([later]) == [False]


async def test_a_stale_lease_cannot_write(
    store: JobStore, make_job: MakeJob, passage: Passage
) -> None:
    job = make_job("a")
    await store.add([job])
    (old,) = await store.claim(["a"], limit=1, lease_ms=100)
    await passage.advance(150)
    assert await store.requeue_expired() == 1
    (new,) = await store.claim(["a"], limit=1, lease_ms=LEASE)
    service = progress(store)
    mine = ProgressReport(job_id=job.id, token=new.token, fraction=0.5, message="new")
    stale = ProgressReport(job_id=job.id, token=old.token, fraction=0.9, message="old")
    assert await service.report([mine, stale]) == [True, False]
    seen = await store.get(job.id)
    assert seen is not None
    assert (seen.progress, seen.progress_message) == (0.5, "new")


async def test_a_pending_job_has_no_progress_and_refuses_reports(
    store: JobStore, make_job: MakeJob
) -> None:
    job = make_job("a")
    await store.add([job])
    seen = await store.get(job.id)
    assert seen is not None
    assert seen.progress is None
    report = ProgressReport(job_id=job.id, token="not-a-lease", fraction=0.1)
    assert await progress(store).report([report]) == [False]


async def test_a_progress_change_is_a_watch_event(store: JobStore, make_job: MakeJob) -> None:
    job = make_job("a")
    await store.add([job])
    (lease,) = await store.claim(["a"], limit=1, lease_ms=LEASE)
    watch = store.watch(job.id)
    first = await anext(watch)
    assert first.progress is None
    report = ProgressReport(job_id=job.id, token=lease.token, fraction=0.25, message="a quarter")
    assert await progress(store).report([report]) == [True]
    changed = await asyncio.wait_for(anext(watch), 10)
    assert changed.progress == 0.25
    await watch.aclose()  # type: ignore[attr-defined]


BAD_REPORTS: dict[str, dict[str, Any]] = {
    "reports[1].job_id": {"job_id": "nope"},
    "reports[1].token": {"token": ""},
    "reports[1].fraction": {"fraction": 1.5},
    "reports[1].message": {"message": "x" * 257},
}


@pytest.mark.parametrize("field", [*BAD_REPORTS, "nan"])
async def test_a_bad_report_refuses_the_whole_batch(
    store: JobStore, make_job: MakeJob, field: str
) -> None:
    job = make_job("a")
    await store.add([job])
    (lease,) = await store.claim(["a"], limit=1, lease_ms=LEASE)
    good = ProgressReport(job_id=job.id, token=lease.token, fraction=0.3)
    changes = BAD_REPORTS.get(field, {"fraction": float("nan")})
    bad = ProgressReport(
        job_id=str(changes.get("job_id", job.id)),
        token=str(changes.get("token", lease.token)),
        fraction=float(changes.get("fraction", 0.5)),
        message=str(changes.get("message", "")),
    )
    with pytest.raises(InvalidJob) as caught:
        await progress(store).report([good, bad])
    assert caught.value.field == ("reports[1].fraction" if field == "nan" else field)
    seen = await store.get(job.id)
    assert seen is not None
    assert seen.progress is None

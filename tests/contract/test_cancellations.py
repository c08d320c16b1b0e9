"""The cancellations stream, on every store: each request reaches every open iterator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from jobqueue.domain import JobStore
from tests.contract.conftest import MakeJob

PROBE = "probe"


async def eventually(check: Callable[[], bool], *, within_s: float = 5.0) -> bool:
    """Poll ``check`` until it holds or ``within_s`` passed (a bound, never an assertion)."""
    for _ in range(int(within_s / 0.01)):
        if check():
            return True
        await asyncio.sleep(0.01)
    return check()


async def running(store: JobStore, make_job: MakeJob, job_type: str) -> str:
    job = make_job(job_type)
    await store.add([job])
    (lease,) = await store.claim([job_type], limit=1, lease_ms=60_000)
    return lease.job.id


class Streams:
    """Open ``cancellations()`` iterators, each read by a task into a list of its own."""

    def __init__(self, store: JobStore, count: int) -> None:
        self.iterators = [store.cancellations() for _ in range(count)]
        self.received: list[list[str]] = [[] for _ in range(count)]
        self.probes: set[str] = set()
        self.tasks = [
            asyncio.create_task(self._read(iterator, into))
            for iterator, into in zip(self.iterators, self.received, strict=True)
        ]

    @staticmethod
    async def _read(iterator: AsyncIterator[str], into: list[str]) -> None:
        async for job_id in iterator:
            into.append(job_id)

    def seen(self, index: int) -> list[str]:
        """What iterator ``index`` received, probes left out."""
        return [job_id for job_id in self.received[index] if job_id not in self.probes]

    async def until_listening(self, store: JobStore, make_job: MakeJob) -> None:
        """Cancel running probe jobs until one reaches every iterator: all are listening then.

        Opening an iterator subscribes in the background (a Redis SUBSCRIBE),
        and the port offers no signal for it, so requests made before that
        are not promised to arrive; requests made after must all arrive.
        """
        for _ in range(20):
            probe = await running(store, make_job, PROBE)
            self.probes.add(probe)
            await store.cancel(probe)
            if await eventually(self._reached_all(probe), within_s=1.0):
                return
        pytest.fail("the cancellation streams never started listening")

    def _reached_all(self, job_id: str) -> Callable[[], bool]:
        return lambda: all(job_id in got for got in self.received)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def test_every_open_iterator_sees_every_cancel_request_of_a_running_job(
    store: JobStore, make_job: MakeJob
) -> None:
    streams = Streams(store, 3)
    await streams.until_listening(store, make_job)
    ids = [await running(store, make_job, "work") for _ in range(5)]
    for job_id in ids:
        await store.cancel(job_id)
    assert await eventually(lambda: all(streams.seen(i) == ids for i in range(3)))
    await streams.close()


async def test_only_requests_that_flag_a_running_job_are_streamed(
    store: JobStore, make_job: MakeJob
) -> None:
    streams = Streams(store, 1)
    await streams.until_listening(store, make_job)
    pending = make_job("work")
    await store.add([pending])
    await store.cancel(pending.id)  # cancelled outright: nothing runs, nothing to stop
    flagged = await running(store, make_job, "work")
    await store.cancel(flagged)
    await store.cancel(flagged)  # asked again: already flagged, not streamed again
    last = await running(store, make_job, "work")
    await store.cancel(last)
    # Requests arrive in order, so a second one for `flagged` would come before `last`.
    assert await eventually(lambda: len(streams.seen(0)) >= 2)
    assert streams.seen(0) == [flagged, last]
    await streams.close()


async def test_closing_one_iterator_leaves_the_others_listening(
    store: JobStore, make_job: MakeJob
) -> None:
    streams = Streams(store, 2)
    await streams.until_listening(store, make_job)
    streams.tasks[0].cancel()  # the task's cancellation closes the iterator it was reading
    await asyncio.gather(streams.tasks[0], return_exceptions=True)
    job_id = await running(store, make_job, "work")
    await store.cancel(job_id)
    assert await eventually(lambda: streams.seen(1) == [job_id])
    assert streams.seen(0) == []
    await streams.close()

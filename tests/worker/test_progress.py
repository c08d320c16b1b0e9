"""job.progress(...) from async and thread handlers, on the direct path and through a server.

Reports are throttled in the SDK (the latest value per job, at most one batch
per interval) and the last one is always stored, before the job's outcome.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from jobqueue.domain import JobStatus, ProgressReport
from jobqueue.worker import JobContext, JobSource, ProgressSource
from jobqueue.worker._progress import ProgressReporter, checked
from tests.worker.conftest import ForwardingSource, Harness


class CountingSource(ForwardingSource):
    """Counts what reaches the source's report_progress (the store or the server)."""

    def __init__(self, inner: JobSource) -> None:
        super().__init__(inner)
        self.calls: list[list[ProgressReport]] = []

    async def report_progress(self, reports: Sequence[ProgressReport]) -> list[bool]:
        self.calls.append(list(reports))
        assert isinstance(self.inner, ProgressSource)
        return await self.inner.report_progress(reports)


async def test_an_async_handler_reports_progress_throttled_and_the_last_is_stored(
    harness: Harness,
) -> None:
    source = CountingSource(harness.make_source())
    worker = harness.worker(source)
    go_on = asyncio.Event()

    @worker.handler("resize")
    async def resize(job: JobContext) -> None:
        # A tight loop: no await between reports, so none is sent during it.
        for step in range(1, 1001):
            job.progress(step / 2000, f"step {step}")
        await go_on.wait()
        job.progress(1.0, "done")

    await worker.start()
    job = await harness.enqueue("resize")

    # WatchJob streams progress: a report is a watch event.
    async with asyncio.timeout(5):
        async for seen in harness.store.watch(job.id):
            if seen.progress == 0.5:
                break
    now = await harness.store.get(job.id)
    assert now is not None
    assert (now.status, now.progress_message) == (JobStatus.RUNNING, "step 1000")
    # A thousand reports, one write: only the latest value was sent.
    assert [len(call) for call in source.calls] == [1]
    go_on.set()
    done = await harness.wait_status(job.id)
    assert done.status is JobStatus.COMPLETED
    assert (done.progress, done.progress_message) == (1.0, "done")
    assert len(source.calls) == 2


async def test_a_thread_handler_reports_progress(harness: Harness) -> None:
    worker = harness.worker()
    go_on = threading.Event()

    @worker.handler("copy")
    def copy(job: JobContext) -> str:
        job.progress(0.25, "copying")
        go_on.wait(10)
        job.progress(0.75, "verifying")
        return "ok"

    await worker.start()
    job = await harness.enqueue("copy")
    async with asyncio.timeout(5):
        async for seen in harness.store.watch(job.id):
            if seen.progress == 0.25:
                break
    assert seen.progress_message == "copying"
    go_on.set()
    done = await harness.wait_status(job.id)
    assert (done.status, done.progress, done.progress_message) == (
        JobStatus.COMPLETED,
        0.75,
        "verifying",
    )


async def test_a_bad_fraction_is_the_handlers_error(harness: Harness) -> None:
    worker = harness.worker()

    @worker.handler("bad")
    async def bad(job: JobContext) -> None:
        job.progress(1.5)

    await worker.start()
    job = await harness.enqueue("bad", max_attempts=1)
    done = await harness.wait_status(job.id)
    assert done.status is JobStatus.FAILED
    assert done.last_error is not None
    assert "progress must be a number from 0 to 1" in done.last_error
    assert done.progress is None


def test_progress_checks_its_arguments() -> None:
    assert checked(0, "x" * 300) == (0.0, "x" * 256)
    with pytest.raises(ValueError, match="from 0 to 1"):
        checked(float("nan"), "")


async def test_a_report_after_the_worker_stopped_goes_nowhere(harness: Harness) -> None:
    source = CountingSource(harness.make_source())
    loop = asyncio.get_running_loop()
    reporter = ProgressReporter(source, loop)
    await reporter.close()
    # A thread handler that outlived its worker reports: dropped, not raised.
    await asyncio.to_thread(reporter.report, ProgressReport(job_id="j", token="t", fraction=0.5))
    await reporter.flush("t")
    assert source.calls == []
    await source.close()

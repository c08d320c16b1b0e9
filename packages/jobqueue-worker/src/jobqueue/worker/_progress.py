"""Progress a handler reports (``JobContext.progress``), throttled and sent in batches.

A handler may report in a tight loop; the store should not see every call.
The reporter keeps only each job's latest value and sends what changed at
most every ``interval_s`` (a quarter second: four writes a second per job at
most), all jobs in one call, like renewals. A job's last value is never
dropped: the runner flushes it before the job's outcome is queued, while its
lease is still held. Reports are best effort: a failed send is logged, not
retried, and never fails the job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading

from jobqueue.domain import MAX_PROGRESS_MESSAGE_LENGTH, ProgressReport

from ._source import ProgressSource

_log = logging.getLogger("jobqueue.worker")

DEFAULT_INTERVAL_S = 0.25


def checked(fraction: float, message: str) -> tuple[float, str]:
    """The handler's values as the store takes them, or ValueError (a bug in the handler)."""
    fraction = float(fraction)
    if not (math.isfinite(fraction) and 0.0 <= fraction <= 1.0):
        raise ValueError(f"progress must be a number from 0 to 1, not {fraction!r}")
    return fraction, str(message)[:MAX_PROGRESS_MESSAGE_LENGTH]


class ProgressReporter:
    """The latest report per lease token; a timer sends them, at most one batch per interval."""

    def __init__(
        self,
        source: ProgressSource,
        loop: asyncio.AbstractEventLoop,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
    ) -> None:
        self._source = source
        self._loop = loop
        self._interval_s = interval_s
        # Written from handler threads and the loop alike.
        self._lock = threading.Lock()
        self._latest: dict[str, ProgressReport] = {}
        self._armed = False
        self._closed = False
        self._tasks: set[asyncio.Task[None]] = set()

    def report(self, report: ProgressReport) -> None:
        """Keep ``report`` as its job's latest; callable from any thread."""
        with self._lock:
            if self._closed:
                return  # a thread handler that outlived its worker: nowhere to send
            self._latest[report.token] = report
            if self._armed:
                return
            self._armed = True
        if _on_loop(self._loop):
            self._arm()
            return
        # The loop may have closed meanwhile: a report is never the handler's error.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._arm)

    async def flush(self, token: str) -> None:
        """Send the job's unsent report now (before its outcome, while its lease holds)."""
        with self._lock:
            report = self._latest.pop(token, None)
        if report is not None:
            await self._send([report])

    async def close(self) -> None:
        with self._lock:
            self._closed = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _arm(self) -> None:
        task = self._loop.create_task(self._send_later(), name="jobqueue-progress")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_later(self) -> None:
        await asyncio.sleep(self._interval_s)
        with self._lock:
            batch = list(self._latest.values())
            self._latest.clear()
            self._armed = False
        if batch:
            await self._send(batch)

    async def _send(self, batch: list[ProgressReport]) -> None:
        try:
            await self._source.report_progress(batch)
        except Exception as error:  # best effort: a job never fails for its progress
            _log.warning("could not store the progress of %d job(s): %s", len(batch), error)


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False

"""What a handler sees of its job."""

from __future__ import annotations

import asyncio
import json
import threading
import warnings
from typing import TYPE_CHECKING, Any

from jobqueue.domain import Lease, ProgressReport

from ._errors import JobCancelled
from ._progress import ProgressReporter, checked

if TYPE_CHECKING:
    from ._handler import Handler


class JobContext:
    """One attempt of one job, handed to its handler.

    Attributes:
        id: the job id.
        type: the job type (the handler's name).
        payload: the producer's bytes, untouched.
        attempt: this attempt's number, from 1.
        headers: what the producer sent with the job (a trace's ``traceparent``...).
        max_attempts: attempts the job gets in all (the job's own choice, else
            the handler's, else the worker's default).
    """

    # One object per job holds both the public view and the worker's
    # bookkeeping, so running a job allocates as little as possible.
    __slots__ = (
        "_cancel_event",
        "_cancelled",
        "_confirmed",
        "_deadline",
        "_handler",
        "_lease",
        "_lost",
        "_progress",
        "_reported",
        "_settling",
        "_shutdown",
        "_task",
        "_timed_out",
        "attempt",
        "headers",
        "id",
        "max_attempts",
        "payload",
        "type",
    )

    def __init__(
        self, lease: Lease, handler: Handler, max_attempts: int, deadline: float = 0.0
    ) -> None:
        job = lease.job
        self.id = job.id
        self.type = job.type
        self.payload = job.payload
        self.attempt = job.attempts
        self.headers = job.headers
        self.max_attempts = max_attempts
        self._lease = lease
        self._handler = handler
        self._cancelled = False
        self._lost = False
        self._shutdown = False
        self._settling = False
        self._timed_out = False
        # The lease's deadline on this process's monotonic clock, from when the
        # claim or the last successful renew was sent: never later than the store's.
        self._deadline = deadline
        # True once a renew reached the store: the store then counts the attempt.
        self._confirmed = False
        # Where progress goes (set by the runner when the source stores it).
        self._progress: ProgressReporter | None = None
        self._reported = False
        self._task: asyncio.Task[None] | None = None
        # Only thread handlers can block on cancellation; async ones get CancelledError.
        self._cancel_event: threading.Event | None = None if handler.is_async else threading.Event()

    @property
    def cancelled(self) -> bool:
        """True once someone asked to cancel the job, or the worker gave up on it.

        The worker gives a job up when it ran past its timeout, or when its
        lease could not be renewed and is about to run out (another worker may
        then take the job, and this attempt's outcome is discarded).

        Async handlers are also interrupted with ``asyncio.CancelledError``;
        thread handlers cannot be, so long-running ones should check this flag
        (or call ``raise_if_cancelled``) between steps.
        """
        return self._cancelled

    def raise_if_cancelled(self) -> None:
        """Raise ``JobCancelled`` if the job should stop; the worker then settles it CANCELLED."""
        if self._cancelled:
            raise JobCancelled(f"job {self.id} was cancelled")

    def wait_cancelled(
        self, timeout_s: float | None = None, *, timeout: float | None = None
    ) -> bool:
        """Block a thread handler up to ``timeout_s`` seconds or until cancellation.

        Returns ``cancelled``: a sleep that ends early when the job is cancelled.
        Async handlers should ``await asyncio.sleep`` instead, which is cancelled.
        ``timeout`` is the deprecated name of ``timeout_s``.
        """
        if timeout is not None:
            warnings.warn(
                "timeout= is deprecated: use timeout_s= (seconds)", DeprecationWarning, stacklevel=2
            )
            timeout_s = timeout
        if self._cancel_event is None:
            raise RuntimeError("wait_cancelled blocks its thread: use it in thread handlers only")
        return self._cancel_event.wait(timeout_s)

    def progress(self, fraction: float, message: str = "") -> None:
        """Report how far the job got: ``fraction`` from 0 to 1 and a short ``message``.

        Cheap to call as often as you like, from async and thread handlers
        alike: the worker sends at most a few reports a second per job, and
        always the last one before the job's outcome. It shows in the job
        (``Job.progress``), ``jobqueue get`` and ``jobqueue watch``. A message
        is cut to 256 characters.

        Raises:
            ValueError: ``fraction`` is not a number from 0 to 1.
        """
        fraction, message = checked(fraction, message)
        reporter = self._progress
        if reporter is not None:
            self._reported = True
            reporter.report(
                ProgressReport(
                    job_id=self.id, token=self._lease.token, fraction=fraction, message=message
                )
            )

    def json(self) -> Any:
        """The payload decoded as JSON."""
        return json.loads(self.payload)

    def __repr__(self) -> str:
        return f"JobContext(id={self.id!r}, type={self.type!r}, attempt={self.attempt})"

    def _cancel(self) -> None:
        self._cancelled = True
        if self._cancel_event is not None:
            self._cancel_event.set()

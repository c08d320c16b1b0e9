"""The worker SDK's error hierarchy.

Handlers raise ``PermanentError`` to fail a job at once; everything else is
raised by the worker itself. All of it descends from the domain's
``JobQueueError`` so one ``except`` catches any error jobqueue raises on purpose.
"""

from __future__ import annotations

from jobqueue.domain import JobQueueError


class WorkerError(JobQueueError):
    """Root of every error the worker SDK raises on purpose."""


class PermanentError(WorkerError):
    """Raised by a handler when retrying cannot help (bad input, a refused request).

    The job ends FAILED at once with this error, whatever attempts it has left.
    """


class JobCancelled(WorkerError):
    """Raised by ``JobContext.raise_if_cancelled`` once the job's cancellation was requested.

    A handler lets it propagate so the worker settles the job CANCELLED.
    """


class HandlerTimeout(WorkerError):
    """Raised (and recorded as the job's error) when a handler runs past its timeout.

    It counts as an ordinary failure: the job is retried while attempts remain.
    """

    def __init__(self, job_type: str, timeout_s: float) -> None:
        super().__init__(f"handler {job_type!r} ran longer than its timeout of {timeout_s:g} s")
        self.job_type = job_type
        self.timeout_s = timeout_s


class HandlerAlreadyRegistered(WorkerError):
    """Raised when a second handler is registered for a job type that already has one."""

    def __init__(self, job_type: str) -> None:
        super().__init__(f"a handler for {job_type!r} is already registered")
        self.job_type = job_type


class WorkerStateError(WorkerError):
    """Raised when an operation does not fit the worker's life cycle.

    For example: starting a worker twice, starting one without handlers, or
    registering a handler after the worker started.
    """


class SourceUnavailable(WorkerError):
    """Raised when a job source cannot reach its backend; the worker retries by itself."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SourceError(WorkerError):
    """Raised when a job source's backend refuses a request for a reason other than reachability.

    ``code`` names the backend's own status (a gRPC status code name, for example).
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

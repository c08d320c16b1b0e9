"""The client's exceptions, and the one table from gRPC status codes to them.

Users catch these and never import ``grpc``: every ``grpc.RpcError`` leaving a
call is translated here, with the server's message kept as ``message``.
"""

from __future__ import annotations

from collections.abc import Mapping

import grpc

from ._models import Job


class JobQueueClientError(Exception):
    """Raised when a call to the jobqueue server fails; the root of every client error.

    Attributes:
        message: the server's (or the client's) explanation, written for humans.
        code: the gRPC status name the server answered with (``"NOT_FOUND"``),
            or ``None`` for errors raised by the client itself.
    """

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class InvalidJob(JobQueueClientError):
    """Raised when the server rejects the input: a bad type, payload, time, id or option.

    The message names the offending field (``"type: must not be empty"``).
    Retrying the same call cannot succeed.
    """


class JobNotFound(JobQueueClientError):
    """Raised when the job never existed or its retention ran out.

    Attributes:
        job_id: the id asked for, when the call was about one job.
    """

    def __init__(self, message: str, *, code: str | None = None, job_id: str | None = None) -> None:
        super().__init__(message, code=code)
        self.job_id = job_id


class JobAlreadyFinished(JobQueueClientError):
    """Raised when an operation needs an unfinished job, such as cancelling a COMPLETED one.

    Attributes:
        job_id: the id asked for, when the call was about one job.
    """

    def __init__(self, message: str, *, code: str | None = None, job_id: str | None = None) -> None:
        super().__init__(message, code=code)
        self.job_id = job_id


class JobAlreadyExists(JobQueueClientError):
    """Raised when an enqueue's ``unique_key`` is held and its ``on_conflict`` rejects
    (``"reject"``, or ``"replace"`` while the holder runs). Nothing was stored.

    Attributes:
        holder_id: the job holding the key, as the server named it.
    """

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.holder_id = message.rsplit(" ", 1)[-1] if " held by job " in message else None


class QueueFull(JobQueueClientError):
    """Raised when the server refuses new jobs because a configured capacity is reached."""


class ServerUnavailable(JobQueueClientError):
    """Raised when the server (or its store) cannot be reached, after every allowed retry.

    Calls that are safe to repeat have been retried with backoff before this is
    raised; the operation may still be retried later.
    """


class DeadlineExceeded(ServerUnavailable):
    """Raised when the server did not answer within the call's deadline.

    A subclass of ``ServerUnavailable`` because the remedy is the same; note
    that the call may still have taken effect on the server.
    """


class Unauthenticated(JobQueueClientError):
    """Raised when the server requires credentials and the call's token is missing or wrong."""


class PermissionDenied(JobQueueClientError):
    """Raised when the credentials are valid but do not allow this operation."""


class ServerError(JobQueueClientError):
    """Raised when the server answers with a status the SDK has no specific error for.

    INTERNAL (a server bug, logged there), UNIMPLEMENTED (an older server) and
    the like; ``code`` tells which.
    """


class WaitTimeout(JobQueueClientError, TimeoutError):
    """Raised when ``wait`` gives up before the job reached a terminal status.

    Also a ``TimeoutError``, so generic timeout handling catches it.

    Attributes:
        job_id: the job waited for.
        last_seen: the job's latest known state, or ``None`` if none arrived.
    """

    def __init__(self, job_id: str, last_seen: Job | None = None) -> None:
        super().__init__(f"job {job_id} did not finish in time")
        self.job_id = job_id
        self.last_seen = last_seen


class ScheduleNotFound(JobNotFound):
    """Raised when no schedule has the given id (it never existed, or was deleted).

    A ``JobNotFound`` too, so code and exit codes that handle "not found" keep working.

    Attributes:
        schedule_id: the id asked for.
    """

    def __init__(self, message: str, *, code: str | None = None, schedule_id: str) -> None:
        super().__init__(message, code=code)
        self.schedule_id = schedule_id


class InvalidSchedule(InvalidJob):
    """Raised when the server rejects a schedule: its cron expression, interval, time zone, ...

    Attributes:
        field: the argument at fault, by the SDK's name (``"cron"``,
            ``"interval_s"``, ``"time_zone"``, ``"type"`` ...).
    """

    def __init__(self, message: str, *, code: str | None = None, field: str) -> None:
        super().__init__(message, code=code)
        self.field = field


_ERRORS: Mapping[grpc.StatusCode, type[JobQueueClientError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidJob,
    grpc.StatusCode.NOT_FOUND: JobNotFound,
    grpc.StatusCode.FAILED_PRECONDITION: JobAlreadyFinished,
    grpc.StatusCode.ALREADY_EXISTS: JobAlreadyExists,
    grpc.StatusCode.RESOURCE_EXHAUSTED: QueueFull,
    grpc.StatusCode.UNAVAILABLE: ServerUnavailable,
    # The server cancelled the call (it was shutting down): unavailable to us.
    grpc.StatusCode.CANCELLED: ServerUnavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
}
"""Every status code with its own exception; any other code becomes ``ServerError``."""


def error_from_rpc(error: grpc.RpcError, *, job_id: str | None = None) -> JobQueueClientError:
    """The client exception for a failed call, keeping the server's message."""
    code, details = status_of(error)
    if code is None:
        return ServerError(details or "the call failed without a status")
    cls = _ERRORS.get(code, ServerError)
    if code is grpc.StatusCode.UNAVAILABLE:
        details = f"server unavailable: {details}"
    elif code is grpc.StatusCode.CANCELLED:
        details = f"the server cancelled the call (shutting down?): {details}"
    elif code is grpc.StatusCode.DEADLINE_EXCEEDED:
        details = "the server did not answer before the deadline"
    if issubclass(cls, (JobNotFound, JobAlreadyFinished)):
        return cls(details, code=code.name, job_id=job_id)
    return cls(details, code=code.name)


def status_of(error: grpc.RpcError) -> tuple[grpc.StatusCode | None, str]:
    """The status code and details of a failed call, from the sync or the asyncio stack."""
    # The asyncio stack's AioRpcError is not a grpc.Call, though it has the same methods.
    if isinstance(error, grpc.aio.AioRpcError | grpc.Call):
        return error.code(), error.details() or ""
    return None, str(error)

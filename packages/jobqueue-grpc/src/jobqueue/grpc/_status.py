"""The one table from domain errors to gRPC status codes."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import grpc

from jobqueue.domain import (
    CapacityExceeded,
    InvalidJob,
    InvalidTransition,
    JobAlreadyFinished,
    JobNotFound,
    JobQueueError,
    LeaseLost,
    ScheduleNotFound,
    StoreUnavailable,
    UniqueConflict,
)

_log = logging.getLogger(__name__)


class NotServedHere(JobQueueError):
    """Raised for an RPC this server does not serve: the feature behind it is not wired in.

    UNIMPLEMENTED, the code a caller expects for a method the server lacks. A
    transport's error, not the domain's, so it is answered in ``status_for``
    rather than listed in ``STATUS_CODES``.
    """

    def __init__(self, method: str) -> None:
        super().__init__(f"{method} is not served by this server")
        self.method = method


STATUS_CODES: Mapping[type[JobQueueError], grpc.StatusCode] = {
    InvalidJob: grpc.StatusCode.INVALID_ARGUMENT,
    JobNotFound: grpc.StatusCode.NOT_FOUND,
    ScheduleNotFound: grpc.StatusCode.NOT_FOUND,
    JobAlreadyFinished: grpc.StatusCode.FAILED_PRECONDITION,
    LeaseLost: grpc.StatusCode.FAILED_PRECONDITION,
    InvalidTransition: grpc.StatusCode.FAILED_PRECONDITION,
    UniqueConflict: grpc.StatusCode.ALREADY_EXISTS,
    CapacityExceeded: grpc.StatusCode.RESOURCE_EXHAUSTED,
    StoreUnavailable: grpc.StatusCode.UNAVAILABLE,
}
"""Every domain error a caller can see, and its status code. Anything else is INTERNAL."""

INTERNAL_DETAILS = "internal error; the server logged the details"
UNAVAILABLE_DETAILS = "the store is unavailable now; retry (the server logged why)"


def status_for(error: BaseException) -> tuple[grpc.StatusCode, str]:
    """The status code and details a failed call answers with.

    Domain errors carry their own message, written for the caller. Any other
    exception is our bug: it is logged here with its traceback and the caller
    sees only a generic INTERNAL, so internals never leak onto the wire.
    ``StoreUnavailable`` is logged and answered with a fixed text too: its
    message comes from the store's client library and may name the store's
    hosts, addresses or socket paths, which are no business of a caller.
    """
    if isinstance(error, StoreUnavailable):
        _log.info("answering UNAVAILABLE: %s", error)
        return grpc.StatusCode.UNAVAILABLE, UNAVAILABLE_DETAILS
    if isinstance(error, NotServedHere):
        return grpc.StatusCode.UNIMPLEMENTED, str(error)
    if isinstance(error, JobQueueError):
        for cls in type(error).__mro__:
            code = STATUS_CODES.get(cls)
            if code is not None:
                return code, str(error)
    _log.error("unexpected error while serving a call", exc_info=error)
    return grpc.StatusCode.INTERNAL, INTERNAL_DETAILS

"""The worker SDK: register handlers for job types and run them reliably.

>>> worker = Worker(StoreSource(store), concurrency=50)
>>> @worker.handler("send_email", max_attempts=5, timeout=30)
... async def send_email(job: JobContext) -> dict[str, str]:
...     return {"sent_to": job.json()["to"]}
>>> worker.run()
"""

from typing import TYPE_CHECKING, Any

from ._context import JobContext
from ._errors import (
    HandlerAlreadyRegistered,
    HandlerTimeout,
    JobCancelled,
    PermanentError,
    SourceError,
    SourceUnavailable,
    WorkerError,
    WorkerStateError,
)
from ._handler import AsyncHandlerFunc, Handler, HandlerFunc, SyncHandlerFunc, encode_result
from ._outcomes import describe_error
from ._settings import WorkerSettings
from ._source import JobSource, StoreSource
from ._worker import CallNext, Middleware, Worker

if TYPE_CHECKING:
    from ._grpc_source import GrpcSource


def __getattr__(name: str) -> Any:
    # GrpcSource pulls in grpc and the generated protos (~4 MiB of resident
    # memory): a worker on the direct Redis path never pays for them.
    if name == "GrpcSource":
        from ._grpc_source import GrpcSource

        return GrpcSource
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    # The worker
    "Worker",
    "WorkerSettings",
    # Handlers
    "JobContext",
    "Handler",
    "HandlerFunc",
    "AsyncHandlerFunc",
    "SyncHandlerFunc",
    "Middleware",
    "CallNext",
    "encode_result",
    "describe_error",
    # Job sources
    "JobSource",
    "StoreSource",
    "GrpcSource",
    # Errors
    "WorkerError",
    "PermanentError",
    "JobCancelled",
    "HandlerTimeout",
    "HandlerAlreadyRegistered",
    "WorkerStateError",
    "SourceUnavailable",
    "SourceError",
]

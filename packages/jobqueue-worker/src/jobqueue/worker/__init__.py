"""The worker SDK: register handlers for job types and run them reliably.

>>> worker = Worker(StoreSource(store), concurrency=50)
>>> @worker.handler("send_email", max_attempts=5, timeout=30)
... async def send_email(job: JobContext) -> dict[str, str]:
...     return {"sent_to": job.json()["to"]}
>>> worker.run()
"""

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
from ._grpc_source import GrpcSource
from ._handler import AsyncHandlerFunc, Handler, HandlerFunc, SyncHandlerFunc, encode_result
from ._settings import WorkerSettings
from ._source import JobSource, StoreSource
from ._worker import CallNext, Middleware, Worker, describe_error

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

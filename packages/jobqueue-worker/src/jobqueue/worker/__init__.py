"""The worker SDK: register handlers for job types and run them reliably.

>>> from jobqueue.worker import JobContext, Worker
>>> worker = Worker(redis_url="redis://127.0.0.1:6379/0", concurrency=50)
>>> @worker.handler("send_email", max_attempts=5, timeout_s=30)
... async def send_email(job: JobContext) -> dict[str, str]:
...     return {"sent_to": job.json()["to"]}
>>> worker.run()

Or run it with the worker command: ``jobqueue-worker myapp:worker``.
"""

import warnings
from typing import TYPE_CHECKING, Any

from jobqueue.domain import RetryPolicy

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
from ._handler import AsyncHandlerFunc, Handler, HandlerFunc, SyncHandlerFunc
from ._logging import JsonFormatter
from ._registry import CallNext, Middleware
from ._settings import WorkerSettings
from ._source import JobSource, PresenceSource, ProgressSource, SettleClaimSource, StoreSource
from ._worker import Worker

if TYPE_CHECKING:
    from ._command import run_command
    from ._grpc_source import GrpcSource

_MOVED = {"describe_error": "_outcomes", "encode_result": "_handler"}
"""Internal helpers that were public once: still importable, with a warning."""


def __getattr__(name: str) -> Any:
    # GrpcSource pulls in grpc and the generated protos (~4 MiB of resident
    # memory): a worker on the direct Redis path never pays for them.
    if name == "GrpcSource":
        from ._grpc_source import GrpcSource

        return GrpcSource
    if name == "run_command":
        # The command line's parser (argparse) is not loaded by a worker an application starts.
        from ._command import run_command

        return run_command
    if name in _MOVED:
        module = _MOVED[name]
        warnings.warn(
            f"jobqueue.worker.{name} is internal: import it from jobqueue.worker.{module}",
            DeprecationWarning,
            stacklevel=2,
        )
        from importlib import import_module

        return getattr(import_module(f"{__name__}.{module}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    # The worker
    "Worker",
    "WorkerSettings",
    "run_command",
    # Handlers
    "JobContext",
    "Handler",
    "HandlerFunc",
    "AsyncHandlerFunc",
    "SyncHandlerFunc",
    "Middleware",
    "CallNext",
    "RetryPolicy",
    # Job sources
    "JobSource",
    "PresenceSource",
    "ProgressSource",
    "SettleClaimSource",
    "StoreSource",
    "GrpcSource",
    # Logging
    "JsonFormatter",
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

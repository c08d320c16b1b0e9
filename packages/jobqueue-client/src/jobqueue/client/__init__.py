"""The jobqueue client SDK: submit, inspect, cancel and follow jobs over gRPC.

>>> from jobqueue.client import JobClient
>>> with JobClient(target="localhost:8080") as client:
...     job = client.enqueue("send_email", {"to": "a@example.com"}, delay_s=30)
...     done = client.wait(job.id, timeout_s=60)
...     print(done.status, done.json())

``AsyncJobClient`` offers the same calls for asyncio code. Errors are the
SDK's own (``JobNotFound``, ``InvalidJob``, ...), all under
``JobQueueClientError``; nothing here requires importing ``grpc``. The
``jobqueue`` command line tool is built on this package (``jobqueue --help``).
"""

# Private names: nothing public but __all__ (tests/client/test_exports.py).
from typing import TYPE_CHECKING as _TYPE_CHECKING

from mpataki.jobqueue.v1 import lazy_exports as _lazy_exports

if _TYPE_CHECKING:
    from ._admin_calls import BulkAction, BulkPage, BulkTotals, WrongJobStatus
    from ._async_client import AsyncJobClient
    from ._channel import DEFAULT_TARGET, DEFAULT_TIMEOUT_S, TARGET_ENV
    from ._errors import (
        DeadlineExceeded,
        InvalidJob,
        InvalidSchedule,
        JobAlreadyExists,
        JobAlreadyFinished,
        JobNotFound,
        JobQueueClientError,
        PermissionDenied,
        QueueFull,
        ScheduleNotFound,
        ServerError,
        ServerUnavailable,
        Unauthenticated,
        WaitTimeout,
    )
    from ._gate_calls import TypeLimits
    from ._models import (
        Job,
        JobPage,
        JobSpec,
        JobStatus,
        OnConflict,
        Payload,
        QueueStats,
        TypeStats,
        UniqueFor,
    )
    from ._presence_calls import WorkerInfo
    from ._retry import RetryPolicy
    from ._schedule_models import JobTemplate, OverlapPolicy, Schedule
    from ._sync_client import JobClient

# Imported on first use (PEP 562), not here: the worker SDK's GrpcSource needs only
# the channel, retry and error modules, and a worker through the server should not
# load the admin and schedule stubs, the CLI's models and OpenTelemetry to reach them.
_LAZY = {
    "BulkAction": "_admin_calls",
    "BulkPage": "_admin_calls",
    "BulkTotals": "_admin_calls",
    "WrongJobStatus": "_admin_calls",
    "AsyncJobClient": "_async_client",
    "DEFAULT_TARGET": "_channel",
    "DEFAULT_TIMEOUT_S": "_channel",
    "TARGET_ENV": "_channel",
    "DeadlineExceeded": "_errors",
    "InvalidJob": "_errors",
    "InvalidSchedule": "_errors",
    "JobAlreadyExists": "_errors",
    "JobAlreadyFinished": "_errors",
    "JobNotFound": "_errors",
    "JobQueueClientError": "_errors",
    "PermissionDenied": "_errors",
    "QueueFull": "_errors",
    "ScheduleNotFound": "_errors",
    "ServerError": "_errors",
    "ServerUnavailable": "_errors",
    "Unauthenticated": "_errors",
    "WaitTimeout": "_errors",
    "TypeLimits": "_gate_calls",
    "Job": "_models",
    "JobPage": "_models",
    "JobSpec": "_models",
    "JobStatus": "_models",
    "OnConflict": "_models",
    "Payload": "_models",
    "QueueStats": "_models",
    "TypeStats": "_models",
    "UniqueFor": "_models",
    "WorkerInfo": "_presence_calls",
    "RetryPolicy": "_retry",
    "JobTemplate": "_schedule_models",
    "OverlapPolicy": "_schedule_models",
    "Schedule": "_schedule_models",
    "JobClient": "_sync_client",
}
"""Each public name and the private module that defines it."""

# PEP 562: a name is imported on first use and then kept as a plain global.
__getattr__, __dir__ = _lazy_exports(globals(), _LAZY)


__all__ = [
    # Clients
    "JobClient",
    "AsyncJobClient",
    "RetryPolicy",
    "DEFAULT_TARGET",
    "DEFAULT_TIMEOUT_S",
    "TARGET_ENV",
    # Values
    "Job",
    "JobStatus",
    "JobSpec",
    "OnConflict",
    "UniqueFor",
    "JobPage",
    "Payload",
    "QueueStats",
    "TypeStats",
    "WorkerInfo",
    "TypeLimits",
    # Recurring schedules
    "Schedule",
    "JobTemplate",
    "OverlapPolicy",
    # Operators' job actions
    "BulkAction",
    "BulkPage",
    "BulkTotals",
    # Errors
    "JobQueueClientError",
    "InvalidJob",
    "JobNotFound",
    "JobAlreadyFinished",
    "QueueFull",
    "ServerUnavailable",
    "DeadlineExceeded",
    "Unauthenticated",
    "PermissionDenied",
    "ServerError",
    "WaitTimeout",
    "JobAlreadyExists",
    "ScheduleNotFound",
    "InvalidSchedule",
    "WrongJobStatus",
]

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

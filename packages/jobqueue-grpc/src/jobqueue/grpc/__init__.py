"""The gRPC transport of jobqueue: servicers, status table, server builder.

The servicers are thin: they map proto messages to domain values, call the
domain's use cases (``JobService``, ``LeaseService``), and let
``service_handler`` turn domain errors into status codes through one table
(``STATUS_CODES``). A caller's mistake is never INTERNAL. The proto mapping
stays private (``_mapping``), the servicers' detail, but for ``job_from_proto``,
which the worker SDK's ``GrpcSource`` shares.
"""

from ._admin_servicer import AdminServicer
from ._auth import (
    HEALTH_SERVICE_NAME,
    INVALID_TOKEN,
    MISSING_TOKEN,
    OPEN_SERVICES,
    BearerTokenAuth,
    parse_tokens,
)
from ._handlers import MalformedRequest, service_handler
from ._health import StoreHealth
from ._job_servicer import JobServicer
from ._mapping import job_from_proto
from ._observe import ObservingInterceptor, RpcObserver
from ._options import MIB, ServerOptions
from ._presence import list_workers_seam, worker_info_to_proto
from ._schedule_servicer import ScheduleServicer
from ._server import (
    ADMIN_SERVICE_NAME,
    JOB_SERVICE_NAME,
    SCHEDULE_SERVICE_NAME,
    WORKER_SERVICE_NAME,
    RunningServer,
    start_server,
)
from ._status import INTERNAL_DETAILS, STATUS_CODES, NotServedHere, status_for
from ._tls import ServerTls
from ._worker_servicer import WorkerServicer

__all__ = [
    # Servicers
    "JobServicer",
    "WorkerServicer",
    "ScheduleServicer",
    "AdminServicer",
    # Server
    "start_server",
    "RunningServer",
    "ServerOptions",
    "StoreHealth",
    "JOB_SERVICE_NAME",
    "WORKER_SERVICE_NAME",
    "SCHEDULE_SERVICE_NAME",
    "ADMIN_SERVICE_NAME",
    "MIB",
    # Security
    "BearerTokenAuth",
    "parse_tokens",
    "OPEN_SERVICES",
    "HEALTH_SERVICE_NAME",
    "MISSING_TOKEN",
    "INVALID_TOKEN",
    "ServerTls",
    # Observability
    "ObservingInterceptor",
    "RpcObserver",
    # Errors and status codes
    "STATUS_CODES",
    "INTERNAL_DETAILS",
    "status_for",
    "NotServedHere",
    "service_handler",
    "MalformedRequest",
    # Worker presence: ListWorkers' seam (AdminServicer(list_workers=...))
    "list_workers_seam",
    # Mapping shared with the worker SDK's GrpcSource
    "job_from_proto",
    "worker_info_to_proto",
]

"""The gRPC transport of jobqueue: servicers, status table, server builder.

The servicers are thin: they map proto messages to domain values, call the
domain's use cases (``JobService``, ``LeaseService``), and let
``service_handler`` turn domain errors into status codes through one table
(``STATUS_CODES``). A caller's mistake is never INTERNAL. The proto mapping
stays private (``_mapping``), the servicers' detail, but for ``job_from_proto``,
which the worker SDK's ``GrpcSource`` shares.
"""

# Private names: nothing public but __all__ (tests/client/test_exports.py).
from typing import TYPE_CHECKING as _TYPE_CHECKING

from mpataki.jobqueue.v1 import lazy_exports as _lazy_exports

if _TYPE_CHECKING:
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
    from ._observe import ObservingInterceptor, RpcObserver, observation_reporter
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

# Imported on first use (PEP 562), not here: the worker SDK's GrpcSource needs only
# the job mapping, and a worker through the server should not load the servicers,
# the server builder, health and reflection services and every service's protos.
_LAZY = {
    "AdminServicer": "_admin_servicer",
    "HEALTH_SERVICE_NAME": "_auth",
    "INVALID_TOKEN": "_auth",
    "MISSING_TOKEN": "_auth",
    "OPEN_SERVICES": "_auth",
    "BearerTokenAuth": "_auth",
    "parse_tokens": "_auth",
    "MalformedRequest": "_handlers",
    "service_handler": "_handlers",
    "StoreHealth": "_health",
    "JobServicer": "_job_servicer",
    "job_from_proto": "_mapping",
    "ObservingInterceptor": "_observe",
    "RpcObserver": "_observe",
    "observation_reporter": "_observe",
    "MIB": "_options",
    "ServerOptions": "_options",
    "list_workers_seam": "_presence",
    "worker_info_to_proto": "_presence",
    "ScheduleServicer": "_schedule_servicer",
    "ADMIN_SERVICE_NAME": "_server",
    "JOB_SERVICE_NAME": "_server",
    "SCHEDULE_SERVICE_NAME": "_server",
    "WORKER_SERVICE_NAME": "_server",
    "RunningServer": "_server",
    "start_server": "_server",
    "INTERNAL_DETAILS": "_status",
    "STATUS_CODES": "_status",
    "NotServedHere": "_status",
    "status_for": "_status",
    "ServerTls": "_tls",
    "WorkerServicer": "_worker_servicer",
}
"""Each public name and the private module that defines it."""

# PEP 562: a name is imported on first use and then kept as a plain global.
__getattr__, __dir__ = _lazy_exports(globals(), _LAZY)


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
    "observation_reporter",
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

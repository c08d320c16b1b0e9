"""Building and starting the gRPC server."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from mpataki.jobqueue.v1 import admin_pb2, jobqueue_pb2, schedule_pb2, worker_pb2

from ._admin_servicer import AdminServicer
from ._handlers import service_handler
from ._health import StoreHealth
from ._job_servicer import JobServicer
from ._options import ServerOptions
from ._schedule_servicer import ScheduleServicer
from ._tls import ServerTls
from ._worker_servicer import WorkerServicer

_log = logging.getLogger(__name__)

JOB_SERVICE_NAME: str = jobqueue_pb2.DESCRIPTOR.services_by_name["JobService"].full_name
WORKER_SERVICE_NAME: str = worker_pb2.DESCRIPTOR.services_by_name["WorkerService"].full_name
SCHEDULE_SERVICE_NAME: str = schedule_pb2.DESCRIPTOR.services_by_name["ScheduleService"].full_name
ADMIN_SERVICE_NAME: str = admin_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name


@dataclass(slots=True)
class RunningServer:
    """A started server, the port it bound, and the health checks it runs."""

    server: grpc.aio.Server
    port: int
    health: StoreHealth

    async def stop(self, grace_s: float | None = None, *, grace: float | None = None) -> None:
        """Refuse new calls, let calls in flight finish for ``grace_s`` seconds, then cancel them.

        None cancels them at once. Health turns NOT_SERVING first, so probes
        see the server leave before its port closes. ``grace`` is the
        deprecated name of ``grace_s``.
        """
        if grace is not None:
            warnings.warn(
                "RunningServer.stop(grace=...) is deprecated: use grace_s=",
                DeprecationWarning,
                stacklevel=2,
            )
            grace_s = grace
        await self.health.shutdown()
        await self.server.stop(grace_s)

    async def wait_for_termination(self) -> None:
        await self.server.wait_for_termination()


async def start_server(
    *,
    address: str,
    job_servicer: JobServicer,
    worker_servicer: WorkerServicer,
    health: StoreHealth,
    options: ServerOptions | None = None,
    tls: ServerTls | None = None,
    interceptors: Sequence[grpc.aio.ServerInterceptor[Any, Any]] = (),
    schedule_servicer: ScheduleServicer | None = None,
    admin_servicer: AdminServicer | None = None,
) -> RunningServer:
    """Serve JobService, WorkerService, grpc.health.v1 and reflection on ``address``.

    ``address`` is ``host:port``; port 0 binds a free port, reported in the
    result. With ``tls`` the port speaks only TLS (and plaintext clients fail
    the handshake). ``interceptors`` wrap every call, the first outermost —
    e.g. a ``BearerTokenAuth``. With ``schedule_servicer`` it serves ScheduleService
    too, with ``admin_servicer`` AdminService. Raises OSError when the address cannot be bound.
    """
    options = options or ServerOptions()
    server = grpc.aio.server(
        interceptors=list(interceptors),
        options=[
            ("grpc.max_receive_message_length", options.max_message_bytes),
            ("grpc.max_send_message_length", options.max_message_bytes),
            # gRPC sets SO_REUSEPORT by default: a second server on a busy
            # port would start "successfully" and share its traffic.
            ("grpc.so_reuseport", 0),
        ],
    )
    server.add_generic_rpc_handlers(
        [
            service_handler(jobqueue_pb2.DESCRIPTOR.services_by_name["JobService"], job_servicer),
            service_handler(
                worker_pb2.DESCRIPTOR.services_by_name["WorkerService"], worker_servicer
            ),
        ]
    )
    if schedule_servicer is not None:
        server.add_generic_rpc_handlers(
            [
                service_handler(
                    schedule_pb2.DESCRIPTOR.services_by_name["ScheduleService"], schedule_servicer
                )
            ]
        )
    if admin_servicer is not None:
        server.add_generic_rpc_handlers(
            [service_handler(admin_pb2.DESCRIPTOR.services_by_name["AdminService"], admin_servicer)]
        )
    health_pb2_grpc.add_HealthServicer_to_server(health.servicer, server)
    reflection.enable_server_reflection(
        [
            JOB_SERVICE_NAME,
            WORKER_SERVICE_NAME,
            *([SCHEDULE_SERVICE_NAME] if schedule_servicer is not None else []),
            *([ADMIN_SERVICE_NAME] if admin_servicer is not None else []),
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ],
        server,
    )
    try:
        if tls is None:
            port = server.add_insecure_port(address)
        else:
            port = server.add_secure_port(address, tls.credentials())
    except RuntimeError as error:  # grpc reports a failed bind as RuntimeError
        raise OSError(f"cannot listen on {address}: {error}") from None
    if port == 0:
        raise OSError(f"cannot listen on {address}")
    await health.start()
    await server.start()
    _log.info(
        "serving gRPC on %s (port %d, %s)",
        address,
        port,
        "plaintext" if tls is None else ("mutual TLS" if tls.mutual else "TLS"),
    )
    return RunningServer(server=server, port=port, health=health)

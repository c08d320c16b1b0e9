"""Worker presence on the wire: WorkerInfo both ways, Heartbeat's use and ListWorkers' seam.

WorkerService.Heartbeat and AdminService.ListWorkers both reach the domain's
``PresenceService``; a remote worker's heartbeat meets the same checks as a
direct worker's (the use case's), and its ``last_seen_at`` is the store's
time whatever the worker sent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobqueue.domain import PresenceService, WorkerInfo
from mpataki.jobqueue.v1 import worker_pb2 as pb

if TYPE_CHECKING:
    # The worker SDK's GrpcSource imports this module (worker_info_to_proto):
    # the admin service's stubs and protos are the server's, loaded when it builds the seam.
    from mpataki.jobqueue.v1 import admin_pb2

    from ._admin_servicer import ListWorkers


def worker_info_to_proto(worker: WorkerInfo) -> pb.WorkerInfo:
    return pb.WorkerInfo(
        id=worker.id,
        host=worker.host,
        pid=worker.pid,
        sdk=worker.sdk,
        types=list(worker.types),
        concurrency=worker.concurrency,
        busy=worker.busy,
        started_at=worker.started_at_ms,
        last_seen_at=worker.last_seen_at_ms,
    )


def worker_info_from_proto(message: pb.WorkerInfo) -> WorkerInfo:
    """The domain's view; ``last_seen_at`` is left to the store."""
    return WorkerInfo(
        id=message.id,
        host=message.host,
        pid=message.pid,
        sdk=message.sdk,
        types=tuple(message.types),
        concurrency=message.concurrency,
        busy=message.busy,
        started_at_ms=message.started_at,
    )


async def heartbeat(presence: PresenceService, request: pb.HeartbeatRequest) -> None:
    """Record (or, ``stopping``, forget) the worker a heartbeat describes."""
    await presence.heartbeat(
        worker_info_from_proto(request.worker), ttl_ms=request.ttl_ms, stopping=request.stopping
    )


def list_workers_seam(presence: PresenceService) -> ListWorkers:
    """What ``AdminServicer(list_workers=...)`` calls: the live workers, by id."""
    from mpataki.jobqueue.v1 import admin_pb2

    async def list_workers(request: admin_pb2.ListWorkersRequest) -> admin_pb2.ListWorkersResponse:
        workers = await presence.list_workers()
        return admin_pb2.ListWorkersResponse(
            workers=[worker_info_to_proto(worker) for worker in workers]
        )

    return list_workers

"""Worker presence for both clients: ``list_workers`` and the ``WorkerInfo`` it returns.

Written once, as ``_calls`` does, and bound by ``JobClient`` and
``AsyncJobClient``. A worker is listed from its first heartbeat until its own
time to live passes without another (it was killed, or lost its network), or
until it stops gracefully.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

from mpataki.jobqueue.v1 import admin_pb2 as pb
from mpataki.jobqueue.v1 import admin_pb2_grpc as pb_grpc
from mpataki.jobqueue.v1 import worker_pb2

from ._calls import Unary


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerInfo:
    """A live worker as it describes itself in its heartbeats.

    Attributes:
        id: unique per worker process and start (``host-pid-random`` for Python workers).
        sdk: the worker SDK and its version, e.g. ``jobqueue-python/0.1.0``.
        types: the job types it handles.
        concurrency: how many jobs it runs at once; ``busy``: how many it runs now.
        started_at: when it started, in UTC (the worker's clock).
        last_seen_at: when its last heartbeat arrived, in UTC (the store's clock).
    """

    id: str
    host: str
    pid: int
    sdk: str
    types: tuple[str, ...]
    concurrency: int
    busy: int
    started_at: datetime
    last_seen_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "host": self.host,
            "pid": self.pid,
            "sdk": self.sdk,
            "types": list(self.types),
            "concurrency": self.concurrency,
            "busy": self.busy,
            "started_at": self.started_at.isoformat(),
            "last_seen_at": self.last_seen_at.isoformat(),
        }


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


# The message's fields and WorkerInfo's have the same names; only these change type.
_FROM_WIRE: dict[str, Callable[[Any], Any]] = {
    "types": tuple,
    "started_at": _utc,
    "last_seen_at": _utc,
}


def worker_from_proto(message: worker_pb2.WorkerInfo) -> WorkerInfo:
    """Each field by its name, so the one field list is ``WorkerInfo``'s (and the proto's)."""
    values = {
        field.name: _FROM_WIRE.get(field.name, _same)(getattr(message, field.name))
        for field in fields(WorkerInfo)
    }
    return WorkerInfo(**values)


def _same(value: Any) -> Any:
    return value


def _workers(response: Any) -> list[WorkerInfo]:
    return [worker_from_proto(worker) for worker in response.workers]


def list_workers() -> Unary[list[WorkerInfo]]:
    """The live workers (those whose last heartbeat is within their time to live), by id.

    A job type with due jobs and no live worker will not make progress;
    ``stats()`` counts each type's live workers (``TypeStats.workers``).
    """
    return Unary("ListWorkers", pb.ListWorkersRequest(), _workers, stub=pb_grpc.AdminServiceStub)

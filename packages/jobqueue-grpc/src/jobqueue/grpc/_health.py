"""grpc.health.v1 driven by the store: NOT_SERVING while the store does not answer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Protocol, cast

from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from jobqueue.domain import JobStore

_log = logging.getLogger(__name__)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class _AsyncHealthServicer(Protocol):
    """The part of grpc_health's asyncio servicer we use; its typing stubs omit ``aio``."""

    async def set(
        self, service: str, status: health_pb2.HealthCheckResponse.ServingStatus
    ) -> None: ...

    async def enter_graceful_shutdown(self) -> None: ...


class StoreHealth:
    """Pings the store every ``interval_s`` and publishes the answer.

    The status is set for the whole server (the empty service name) and for
    each service, since every RPC needs the store: a load balancer or an
    orchestrator's probe then stops routing calls that could only fail
    UNAVAILABLE, and routes them again once the store is back.
    """

    def __init__(
        self,
        store: JobStore,
        *,
        services: Sequence[str],
        interval_s: float = 1.0,
        timeout_s: float = 1.0,
    ) -> None:
        servicer = health.aio.HealthServicer()  # type: ignore[attr-defined]
        self.servicer: health_pb2_grpc.HealthServicer = servicer
        self._statuses = cast(_AsyncHealthServicer, servicer)
        self._store = store
        self._services = ("", *services)
        self._interval_s = interval_s
        self._timeout_s = timeout_s
        self._healthy: bool | None = None
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    @property
    def healthy(self) -> bool | None:
        """The last verdict; None before the first check."""
        return self._healthy

    @property
    def services(self) -> tuple[str, ...]:
        """The services whose health is reported: the whole server ("") first."""
        return self._services

    def status(self, service: str) -> health_pb2.HealthCheckResponse.ServingStatus | None:
        """What a health check of ``service`` answers now; None for a service not served.

        For transports other than grpcio's, which read the verdict here rather
        than from grpcio's servicer. Before the first check and after shutdown
        the answer is NOT_SERVING.
        """
        if service not in self._services:
            return None
        return SERVING if self._healthy and not self._stopping else NOT_SERVING

    async def check(self) -> bool:
        """Ping the store once and publish the result; True when it answered."""
        try:
            async with asyncio.timeout(self._timeout_s):
                await self._store.ping()
        except Exception as error:
            healthy = False
            if self._healthy is not False:
                _log.warning("the store does not answer, health is NOT_SERVING: %s", error)
        else:
            healthy = True
            if self._healthy is False:
                _log.warning("the store answers again, health is SERVING")
        self._healthy = healthy
        for service in self._services:
            await self._statuses.set(service, SERVING if healthy else NOT_SERVING)
        return healthy

    async def start(self) -> None:
        """Check once now, so the first probe sees the truth, then keep checking."""
        if self._task is not None:
            return
        await self.check()
        self._task = asyncio.create_task(self._run(), name="jobqueue-store-health")

    async def shutdown(self) -> None:
        """Stop checking and report NOT_SERVING for good: the server is going away."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._statuses.enter_graceful_shutdown()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            await self.check()

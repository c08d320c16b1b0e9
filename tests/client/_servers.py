"""Servers for the client tests: the real servicers over a memory store, in-process.

The server is ``jobqueue.grpc.start_server`` with the real servicers; only the
store is sometimes a fake that loses replies or stalls, to show what the
client does about it. Sync tests need the server off their own thread, so
``ServerThread`` runs one in a background event loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

import grpc

from jobqueue.domain import (
    Job,
    JobService,
    JobStore,
    Limits,
    StoreUnavailable,
    SystemClock,
    UuidV7Generator,
)
from jobqueue.grpc import (
    JOB_SERVICE_NAME,
    WORKER_SERVICE_NAME,
    AdminServicer,
    JobServicer,
    RunningServer,
    ServerOptions,
    ServerTls,
    StoreHealth,
    WorkerServicer,
    service_handler,
    start_server,
)
from jobqueue.memory import MemoryJobStore, MemoryStoreSettings
from mpataki.jobqueue.v1 import admin_pb2, jobqueue_pb2

T = TypeVar("T")

TEST_LIMITS = Limits(max_payload_bytes=4096, max_batch_size=20, max_page_size=50)
TEST_OPTIONS = ServerOptions(
    min_lease_ms=100, health_check_interval_s=0.05, health_check_timeout_s=0.5
)


class UnreliableStore(MemoryJobStore):
    """A memory store that can lose replies, fail before acting, or stall.

    ``lose_add_replies``/``lose_cancel_replies``: that many calls take effect,
    then fail with StoreUnavailable as if the reply were lost on its way back.
    ``fail_gets``: that many ``get`` calls fail before reading anything.
    ``stall``: while set, ``get`` hangs (to exceed the client's deadline).
    """

    def __init__(self, settings: MemoryStoreSettings | None = None) -> None:
        super().__init__(settings or MemoryStoreSettings(max_jobs=10_000))
        self.lose_add_replies = 0
        self.lose_cancel_replies = 0
        self.fail_gets = 0
        self.get_calls = 0
        self.stall = False

    async def add(self, jobs: Sequence[Job], *, batch_key: str | None = None) -> list[Job]:
        stored = await super().add(jobs, batch_key=batch_key)
        if self.lose_add_replies:
            self.lose_add_replies -= 1
            raise StoreUnavailable("reply lost (test)")
        return stored

    async def cancel(self, job_id: str) -> Job:
        job = await super().cancel(job_id)
        if self.lose_cancel_replies:
            self.lose_cancel_replies -= 1
            raise StoreUnavailable("reply lost (test)")
        return job

    async def get(self, job_id: str) -> Job | None:
        self.get_calls += 1
        if self.fail_gets:
            self.fail_gets -= 1
            raise StoreUnavailable("store down (test)")
        if self.stall:
            await asyncio.sleep(30)
        return await super().get(job_id)


async def start_test_server(
    store: JobStore,
    *,
    port: int = 0,
    tls: ServerTls | None = None,
    interceptors: Sequence[grpc.aio.ServerInterceptor[Any, Any]] = (),
) -> RunningServer:
    """The real JobService and WorkerService over ``store`` on a loopback port (0: any)."""
    service = JobService(store, clock=SystemClock(), ids=UuidV7Generator(), limits=TEST_LIMITS)
    return await start_server(
        address=f"127.0.0.1:{port}",
        job_servicer=JobServicer(service, options=TEST_OPTIONS),
        worker_servicer=WorkerServicer(store, limits=TEST_LIMITS, options=TEST_OPTIONS),
        health=StoreHealth(
            store,
            services=[JOB_SERVICE_NAME, WORKER_SERVICE_NAME],
            interval_s=TEST_OPTIONS.health_check_interval_s,
            timeout_s=TEST_OPTIONS.health_check_timeout_s,
        ),
        options=TEST_OPTIONS,
        tls=tls,
        interceptors=interceptors,
    )


class ServerThread:
    """A test server in its own thread and event loop, for tests of the blocking client."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="test-server")
        self._server: RunningServer | None = None
        self.store: UnreliableStore | None = None

    @property
    def target(self) -> str:
        assert self._server is not None
        return f"127.0.0.1:{self._server.port}"

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the server's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    def start(self) -> None:
        self._thread.start()

        async def start() -> tuple[UnreliableStore, RunningServer]:
            store = UnreliableStore()
            return store, await start_test_server(store)

        self.store, self._server = self.run(start())

    def stop(self) -> None:
        if self._server is not None:
            self.run(self._server.stop(None))
        if self.store is not None:
            self.run(self.store.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


class AdminServerThread:
    """JobService and an AdminService over one memory store, on a loop of its own.

    Each area's tests serve the AdminService seams they exercise (the gates,
    ListWorkers), so the subclass builds the ``AdminServicer`` from ``store``.
    """

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name)
        self._thread.start()
        self.store = MemoryJobStore()
        self._server: grpc.aio.Server = self.run(self._start())

    def admin_servicer(self) -> AdminServicer:
        raise NotImplementedError

    async def _start(self) -> grpc.aio.Server:
        jobs = JobService(self.store, clock=SystemClock(), ids=UuidV7Generator())
        server = grpc.aio.server()
        server.add_generic_rpc_handlers(
            [
                service_handler(
                    jobqueue_pb2.DESCRIPTOR.services_by_name["JobService"], JobServicer(jobs)
                ),
                service_handler(
                    admin_pb2.DESCRIPTOR.services_by_name["AdminService"], self.admin_servicer()
                ),
            ]
        )
        self.port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        return server

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    def stop(self) -> None:
        self.run(self._server.stop(None))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()

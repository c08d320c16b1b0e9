"""jobqueue's side: producers (run in the benchmark process) and workers (in children)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from jobqueue.client import AsyncJobClient, JobSpec
from jobqueue.domain import (
    Job,
    JobService,
    JobStatus,
    Outcome,
    OutcomeKind,
    SystemClock,
    UuidV7Generator,
)
from jobqueue.redis import RedisJobStore, RedisStoreSettings
from mpataki.jobqueue.v1 import jobqueue_pb2 as pb
from mpataki.jobqueue.v1 import jobqueue_pb2_grpc as pb_grpc

from ._common import now, payload_bytes, signal_ready

JOB_TYPE = "bench"
NOOP_METHOD = "/mpataki.jobqueue.v1.JobService/EnqueueJob"


def store_for(url: str) -> RedisJobStore:
    return RedisJobStore(RedisStoreSettings(url=url))


def service_for(store: RedisJobStore) -> JobService:
    return JobService(store, clock=SystemClock(), ids=UuidV7Generator())


async def prefill(url: str, count: int, *, execution_time_ms: int | None = None) -> None:
    """Put ``count`` jobs in the queue, 1,000 per Lua call (untimed setup)."""
    store = store_for(url)
    ids, clock = UuidV7Generator(), SystemClock()
    payload = payload_bytes()
    try:
        for start in range(0, count, 1_000):
            at = clock.now_ms()
            due = at if execution_time_ms is None else execution_time_ms
            await store.add(
                [
                    Job(
                        id=ids.new_id(),
                        type=JOB_TYPE,
                        payload=payload,
                        status=JobStatus.PENDING,
                        execution_time_ms=due,
                        created_at=at,
                        updated_at=at,
                    )
                    for _ in range(min(1_000, count - start))
                ]
            )
    finally:
        await store.close()


# -- producers -------------------------------------------------------------------


async def timed_calls(call: Callable[[], Awaitable[Any]], count: int, in_flight: int) -> float:
    """Make ``count`` calls with ``in_flight`` of them outstanding; returns calls per second."""
    remaining = count

    async def lane() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await call()

    started = now()
    await asyncio.gather(*(lane() for _ in range(in_flight)))
    return count / (now() - started)


async def enqueue_direct(url: str, count: int) -> float:
    """One ``JobService.enqueue`` per job straight into Redis: the embedded producer."""
    store = store_for(url)
    service = service_for(store)
    payload = payload_bytes()
    try:
        return await timed_calls(lambda: service.enqueue(JOB_TYPE, payload), count, 1)
    finally:
        await store.close()


async def enqueue_grpc(target: str, count: int, in_flight: int) -> float:
    """One ``AsyncJobClient.enqueue`` per job through the server, as an application calls it.

    The SDK gives every enqueue an idempotency key, so the server also records
    one key per job: the cost of safe retries is part of the figure.
    """
    async with AsyncJobClient(target=target) as client:
        payload = payload_bytes()
        await client.enqueue(JOB_TYPE, payload)  # connect outside the timing
        return await timed_calls(lambda: client.enqueue(JOB_TYPE, payload), count, in_flight)


async def enqueue_bulk_grpc(target: str, count: int, batch: int = 1_000) -> float:
    async with AsyncJobClient(target=target) as client:
        payload = payload_bytes()
        await client.enqueue(JOB_TYPE, payload)
        specs = [JobSpec(JOB_TYPE, payload) for _ in range(batch)]
        return batch * await timed_calls(
            lambda: client.enqueue_many(specs), max(count // batch, 1), 1
        )


async def enqueue_bulk_direct(url: str, count: int, batch: int = 1_000) -> float:
    from jobqueue.domain import EnqueueRequest

    store = store_for(url)
    service = service_for(store)
    requests = [EnqueueRequest(type=JOB_TYPE, payload=payload_bytes())] * batch
    try:
        return batch * await timed_calls(
            lambda: service.enqueue_many(requests), max(count // batch, 1), 1
        )
    finally:
        await store.close()


async def enqueue_paced_direct(url: str, count: int, rate: float) -> None:
    """Jobs at a steady ``rate``, each stamped with its enqueue time (for start latency)."""
    store = store_for(url)
    service = service_for(store)
    started = now()
    try:
        for i in range(count):
            delay = started + i / rate - now()
            if delay > 0:
                await asyncio.sleep(delay)
            await service.enqueue(JOB_TYPE, payload_bytes(now()))
    finally:
        await store.close()


async def noop_floor(target: str, count: int, in_flight: int) -> float:
    """The same SDK call against a server whose handler does nothing: the transport's own cost."""
    return await enqueue_grpc(target, count, in_flight)


# -- children ----------------------------------------------------------------------


async def run_server(
    redis_url: str, port: int, *, probe: bool = False, allocs_path: str = "", profile_path: str = ""
) -> None:
    """The real server in this harness's process; with ``probe``, SIGUSR1 opens and closes
    a cost window (``_probes``), whose counts come back as a ``STATS {json}`` line."""
    from jobqueue_server._app import App
    from jobqueue_server.containers import Container
    from jobqueue_server.settings import ServerSettings

    container = Container()
    container.settings.override(
        ServerSettings(host="127.0.0.1", port=port, redis_url=redis_url, log_level="WARNING")
    )
    app = App(container)
    await app.start()
    if probe:
        _probe_on_signal(allocs_path, profile_path)
    signal_ready()
    try:
        await asyncio.Event().wait()
    finally:
        await app.stop()


def _probe_on_signal(allocs_path: str, profile_path: str) -> None:
    import json
    import signal
    import sys

    from . import _probes

    loop = asyncio.get_running_loop()
    counter = _probes.LoopCounter(loop)
    windows: list[_probes.Window] = []

    def toggle() -> None:
        if windows:
            stats = windows.pop().close()
            sys.stdout.write("STATS " + json.dumps(stats) + "\n")
            sys.stdout.flush()
        else:
            windows.append(_probes.Window(counter, allocs_path, profile_path))
            sys.stdout.write("STATS {}\n")
            sys.stdout.flush()

    loop.add_signal_handler(signal.SIGUSR1, toggle)


class _NoopJobService(pb_grpc.JobServiceServicer):
    """Only EnqueueJob is called; the rest stay the generated UNIMPLEMENTED stubs."""

    def __init__(self) -> None:
        self._response = pb.EnqueueJobResponse(
            job=pb.Job(
                id="0" * 36, type=JOB_TYPE, payload=payload_bytes(), status=pb.JOB_STATUS_PENDING
            )
        )

    async def EnqueueJob(
        self, request: pb.EnqueueJobRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.EnqueueJobResponse:
        return self._response


async def run_noop_server(port: int) -> None:
    """A grpc.aio server answering EnqueueJob with a canned response: the transport's floor."""
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    pb_grpc.add_JobServiceServicer_to_server(_NoopJobService(), server)  # type: ignore[abstract]
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    signal_ready()
    await server.wait_for_termination()


async def claim_complete(url: str, count: int, batch: int = 100) -> float:
    """Claim and complete ``count`` due jobs, ``batch`` per call, straight on the store.

    The due jobs are added (untimed) next to whatever backlog is already there.
    """
    await prefill(url, count)
    store = store_for(url)
    done = 0
    try:
        started = now()
        while done < count:
            leases = await store.claim([JOB_TYPE], limit=batch, lease_ms=60_000)
            if not leases:
                break
            await store.settle(
                [
                    Outcome(job_id=lease.job.id, token=lease.token, kind=OutcomeKind.COMPLETE)
                    for lease in leases
                ]
            )
            done += len(leases)
        return done / (now() - started)
    finally:
        await store.close()

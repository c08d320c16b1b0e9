"""Producers for the fault scenarios: enqueue at a steady rate over gRPC and count what failed.

Retryable failures (UNAVAILABLE, DEADLINE_EXCEEDED) are expected while a fault lasts.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc

from tests.faults._scenario import (
    FAST_CHANNEL_OPTIONS,
    sleep_until,
)

# -- producers ------------------------------------------------------------------

RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


@dataclass
class ProducerLog:
    """What the clients saw: acknowledged jobs, and every failed call by status."""

    acked: dict[str, str] = field(default_factory=dict)
    """idempotency key → the job id EnqueueJob acknowledged."""
    ids_per_key: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    wrong: list[str] = field(default_factory=list)
    """Answers that were neither a correct job nor a retryable error."""
    slowest_call_s: float = 0.0
    gave_up: int = 0
    first_error_at: float | None = None
    last_error_at: float | None = None
    acked_at: list[float] = field(default_factory=list)
    due_ns: dict[str, int] = field(default_factory=dict)
    """job id → when a scheduled job falls due, on this host's monotonic clock (ns)."""

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


async def produce(
    target: str,
    *,
    run: str,
    tasks: int,
    count: int | None = None,
    duration_s: float | None = None,
    rate: float | None = None,
    job_type: str = "work",
    call_timeout_s: float = 5.0,
    retry_for_s: float = 30.0,
    log: ProducerLog | None = None,
    delay_ms: Callable[[int], int | None] | None = None,
    max_attempts: int | None = None,
) -> ProducerLog:
    """``tasks`` concurrent producers enqueueing over one channel, each job with its own key.

    A call that fails UNAVAILABLE or DEADLINE_EXCEEDED is retried with the same
    idempotency key (its reply may have been lost after the job was stored),
    for at most ``retry_for_s``. Stops after ``count`` jobs or ``duration_s``.
    ``rate`` bounds the jobs per second over all tasks.

    ``delay_ms(index)``, when it returns a number, schedules that job: its
    ``execution_time_ms`` is this process's wall clock plus the delay, and the
    same moment on the monotonic clock goes to ``log.due_ns``, so a ledger run
    can be compared with it. ``max_attempts`` is set on every job.
    """
    from mpataki.jobqueue.v1 import jobqueue_pb2 as pb
    from mpataki.jobqueue.v1 import jobqueue_pb2_grpc as pb_grpc

    log = log or ProducerLog()
    deadline = None if duration_s is None else time.monotonic() + duration_s
    issued = 0
    pause = 0.0 if rate is None else tasks / rate

    async def one_task(stub: pb_grpc.JobServiceAsyncStub) -> None:
        nonlocal issued
        next_at = time.monotonic()
        while True:
            if count is not None and issued >= count:
                return
            if deadline is not None and time.monotonic() >= deadline:
                return
            index = issued
            issued += 1
            key = f"{run}-{index}"
            request = pb.EnqueueJobRequest(
                type=job_type, idempotency_key=key, max_attempts=max_attempts
            )
            due_ns = None
            delay = None if delay_ms is None else delay_ms(index)
            if delay is not None:
                wall_ns, mono_ns = time.time_ns(), time.monotonic_ns()
                request.execution_time_ms = wall_ns // 1_000_000 + delay
                due_ns = mono_ns + request.execution_time_ms * 1_000_000 - wall_ns
            give_up_at = time.monotonic() + retry_for_s
            while True:
                began = time.monotonic()
                try:
                    response = await stub.EnqueueJob(request, timeout=call_timeout_s)
                except grpc.aio.AioRpcError as error:
                    now = time.monotonic()
                    log.slowest_call_s = max(log.slowest_call_s, now - began)
                    log.errors[error.code().name] += 1
                    log.first_error_at = log.first_error_at or now
                    log.last_error_at = now
                    if error.code() not in RETRYABLE:
                        log.wrong.append(f"{key}: {error.code().name} {error.details()}")
                        break
                    if now > give_up_at:
                        log.gave_up += 1
                        break
                    await asyncio.sleep(0.05)
                    continue
                now = time.monotonic()
                log.slowest_call_s = max(log.slowest_call_s, now - began)
                job = response.job
                if job.type != job_type or job.idempotency_key != key or len(job.id) != 36:
                    log.wrong.append(f"{key}: answered {job}")
                log.acked[key] = job.id
                if due_ns is not None:
                    log.due_ns[job.id] = due_ns
                log.ids_per_key[key].add(job.id)
                log.acked_at.append(now)
                break
            if pause:
                next_at += pause
                await sleep_until(next_at)

    async with grpc.aio.insecure_channel(target, options=FAST_CHANNEL_OPTIONS) as channel:
        stub = pb_grpc.JobServiceStub(channel)
        await asyncio.gather(*(one_task(stub) for _ in range(tasks)))
    return log

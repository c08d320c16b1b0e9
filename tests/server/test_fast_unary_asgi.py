"""The fast gRPC unary path (jobqueue.connect._fast) driven straight through ASGI.

A real client masks what these pin: how much of an oversized body is read,
what is counted when the server cancels a request, a body that never comes,
an expired deadline, odd servicers, repeated headers, and the claim whose
answer reaches nobody. Each test scripts ``receive`` and records ``send``,
and counts the calls handed to connectrpc (``fallbacks``).
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message as ProtoMessage

from jobqueue.connect import WireApp
from jobqueue.connect._fast_watch import DeadlineContext
from jobqueue.domain import JobService, JobStatus, SystemClock, UuidV7Generator
from jobqueue.grpc import JobServicer, StoreHealth, WorkerServicer
from jobqueue.memory import MemoryJobStore
from mpataki.jobqueue.v1 import jobqueue_pb2 as pb
from mpataki.jobqueue.v1 import worker_pb2 as wpb
from tests.grpc.conftest import TEST_LIMITS, TEST_OPTIONS

ENQUEUE = "/mpataki.jobqueue.v1.JobService/EnqueueJob"
CLAIM = "/mpataki.jobqueue.v1.WorkerService/ClaimJobs"
LIMIT = TEST_OPTIONS.max_message_bytes
Message = dict[str, Any]
NO_DEADLINE = DeadlineContext(None)


@dataclass
class Observed:
    calls: list[tuple[str, grpc.StatusCode]] = field(default_factory=list)

    def observe(self, *, method: str, code: grpc.StatusCode, duration_s: float) -> None:
        self.calls.append((method, code))


class OddJobs(JobServicer):
    """EnqueueJob that misbehaves on request (by type), or waits to be cancelled."""

    def __init__(self, service: JobService) -> None:
        super().__init__(service, options=TEST_OPTIONS)
        self.started = asyncio.Event()
        self.calls = 0

    async def EnqueueJob(self, request: Any, context: Any) -> Any:
        self.calls += 1
        if request.type == "none":
            return None
        if request.type == "cancelself":
            raise asyncio.CancelledError
        if request.type == "wait":
            self.started.set()
            await asyncio.sleep(30)
        return await super().EnqueueJob(request, context)


class Wire:
    """A WireApp over a memory store, with its fallbacks and observations recorded."""

    def __init__(self, claim_after: Callable[[], Awaitable[None]] | None = None) -> None:
        self.store = MemoryJobStore()
        service = JobService(
            self.store, clock=SystemClock(), ids=UuidV7Generator(), limits=TEST_LIMITS
        )
        self.jobs = OddJobs(service)
        self.workers = WorkerServicer(self.store, limits=TEST_LIMITS, options=TEST_OPTIONS)
        if claim_after is not None:
            claim = self.workers.ClaimJobs

            async def claim_then(request: Any, context: Any) -> Any:
                response = await claim(request, context)
                await claim_after()
                return response

            self.workers.ClaimJobs = claim_then  # type: ignore[method-assign]
        self.observed = Observed()
        self.app = WireApp(
            job_servicer=self.jobs,
            worker_servicer=self.workers,
            health=StoreHealth(self.store, services=[]),
            options=TEST_OPTIONS,
            observer=self.observed,
        )
        self.fallbacks: list[str] = []
        fast: Any = self.app._fast
        long_way = fast._fallback

        async def counted(scope: Any, receive: Any, send: Any) -> None:
            self.fallbacks.append(scope["path"])
            await long_way(scope, receive, send)

        fast._fallback = counted


class Exchange:
    """One request: ``receive`` hands out ``messages`` then waits for ``gone``; ``send`` records."""

    def __init__(self, messages: list[Message]) -> None:
        self.messages = list(messages)
        self.received = 0
        self.sent: list[Message] = []
        self.gone = asyncio.Event()

    async def receive(self) -> Message:
        self.received += 1
        if self.messages:
            return self.messages.pop(0)
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    def status(self) -> tuple[int, str]:
        """grpc-status and grpc-message (decoded) of the answer."""
        headers = dict(self.sent[0]["headers"])
        if self.sent[-1]["type"] == "http.response.trailers":
            headers.update(dict(self.sent[-1]["headers"]))
        message = headers.get(b"grpc-message", b"").decode()
        return int(headers[b"grpc-status"]), urllib.parse.unquote(message)


def scope(path: str, *headers: tuple[bytes, bytes]) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "POST",
        "path": path,
        "root_path": "",
        "scheme": "http",
        "headers": [*headers] or [(b"content-type", b"application/grpc")],
        "extensions": {"http.response.trailers": {}},
    }


def enveloped(message: ProtoMessage) -> bytes:
    data = message.SerializeToString()
    return b"\x00" + len(data).to_bytes(4, "big") + data


def body(data: bytes, *, more: bool = False) -> Message:
    return {"type": "http.request", "body": data, "more_body": more}


GRPC = (b"content-type", b"application/grpc")


async def test_an_oversized_message_is_refused_from_its_prefix_without_reading_the_rest() -> None:
    wire = Wire()
    chunk = b"x" * 65_536
    prefix = b"\x00" + (LIMIT + 1).to_bytes(4, "big")
    chunks = [body(prefix + chunk, more=True)] + [body(chunk, more=True)] * 40 + [body(b"")]
    exchange = Exchange(chunks)
    await wire.app(scope(ENQUEUE), exchange.receive, exchange.send)
    assert exchange.status() == (
        grpc.StatusCode.RESOURCE_EXHAUSTED.value[0],
        f"message is larger than configured max {LIMIT}",
    )
    # Read: the first chunk (the prefix), and connectrpc's replay of it; never the other 40.
    assert exchange.received <= 2
    assert wire.fallbacks == [ENQUEUE]
    assert wire.observed.calls == [(ENQUEUE, grpc.StatusCode.RESOURCE_EXHAUSTED)]


async def test_an_oversized_message_in_one_chunk_goes_to_connectrpc() -> None:
    wire = Wire()
    exchange = Exchange([body(enveloped(pb.EnqueueJobRequest(type="t", payload=b"p" * LIMIT)))])
    await wire.app(scope(ENQUEUE), exchange.receive, exchange.send)
    assert exchange.status() == (
        grpc.StatusCode.RESOURCE_EXHAUSTED.value[0],
        f"message is larger than configured max {LIMIT}",
    )
    assert wire.fallbacks == [ENQUEUE]
    assert wire.jobs.calls == 0


async def test_a_message_in_many_chunks_within_the_limit_takes_the_fast_path() -> None:
    wire = Wire()
    data = enveloped(pb.EnqueueJobRequest(type="t", payload=b"p" * 900))
    parts = [body(data[i : i + 100], more=True) for i in range(0, len(data), 100)] + [body(b"")]
    exchange = Exchange(parts)
    await wire.app(scope(ENQUEUE), exchange.receive, exchange.send)
    assert exchange.status() == (0, "")
    assert wire.fallbacks == []
    assert wire.observed.calls == [(ENQUEUE, grpc.StatusCode.OK)]


async def test_a_request_the_server_cancels_is_counted_cancelled() -> None:
    wire = Wire()
    exchange = Exchange([body(enveloped(pb.EnqueueJobRequest(type="wait")))])
    task = asyncio.ensure_future(wire.app(scope(ENQUEUE), exchange.receive, exchange.send))
    async with asyncio.timeout(10):
        await wire.jobs.started.wait()
    task.cancel()  # as h2corn does when the stream is reset
    with pytest.raises(asyncio.CancelledError):
        await task
    assert wire.observed.calls == [(ENQUEUE, grpc.StatusCode.CANCELLED)]


async def test_a_caller_that_leaves_before_its_body_is_counted_cancelled() -> None:
    wire = Wire()
    exchange = Exchange([body(b"\x00\x00", more=True)])
    exchange.gone.set()
    await wire.app(scope(ENQUEUE), exchange.receive, exchange.send)
    assert exchange.sent == []  # nobody to answer
    assert wire.observed.calls == [(ENQUEUE, grpc.StatusCode.CANCELLED)]
    assert wire.jobs.calls == 0


async def test_the_deadline_runs_while_the_body_is_awaited() -> None:
    wire = Wire()
    exchange = Exchange([body(b"\x00\x00", more=True)])  # the rest never comes
    async with asyncio.timeout(10):
        await wire.app(
            scope(ENQUEUE, GRPC, (b"grpc-timeout", b"50m")), exchange.receive, exchange.send
        )
    assert exchange.status() == (grpc.StatusCode.DEADLINE_EXCEEDED.value[0], "Request timed out")
    assert wire.observed.calls == [(ENQUEUE, grpc.StatusCode.DEADLINE_EXCEEDED)]
    assert wire.fallbacks == []


@pytest.mark.parametrize("grpc_timeout", [b"1n", b"0S", b"0m"])
async def test_an_expired_deadline_is_answered_without_a_call(grpc_timeout: bytes) -> None:
    wire = Wire()
    exchange = Exchange([body(enveloped(pb.EnqueueJobRequest(type="t")))])
    headers = (GRPC, (b"grpc-timeout", grpc_timeout))
    await wire.app(scope(ENQUEUE, *headers), exchange.receive, exchange.send)
    assert exchange.status() == (grpc.StatusCode.DEADLINE_EXCEEDED.value[0], "Request timed out")
    assert wire.jobs.calls == 0
    assert wire.observed.calls == [(ENQUEUE, grpc.StatusCode.DEADLINE_EXCEEDED)]


@pytest.mark.parametrize(
    ("kind", "code", "details"),
    [
        ("none", grpc.StatusCode.INTERNAL, "internal error; the server logged the details"),
        ("cancelself", grpc.StatusCode.CANCELLED, "Request was cancelled"),
    ],
)
async def test_an_odd_servicer_is_answered_with_connectrpcs_code(
    kind: str, code: grpc.StatusCode, details: str
) -> None:
    wire = Wire()
    exchange = Exchange([body(enveloped(pb.EnqueueJobRequest(type=kind)))])
    await wire.app(scope(ENQUEUE), exchange.receive, exchange.send)
    assert exchange.sent[0]["status"] == 200
    assert exchange.status() == (code.value[0], details)
    assert wire.observed.calls == [(ENQUEUE, code)]
    assert wire.fallbacks == []


@pytest.mark.parametrize(
    ("timeouts", "code"),
    [((b"0S", b"100S"), grpc.StatusCode.DEADLINE_EXCEEDED), ((b"100S", b"0S"), grpc.StatusCode.OK)],
)
async def test_of_repeated_headers_the_first_counts(
    timeouts: tuple[bytes, bytes], code: grpc.StatusCode
) -> None:
    wire = Wire()
    exchange = Exchange([body(enveloped(pb.EnqueueJobRequest(type="t")))])
    headers = [GRPC, (b"content-type", b"application/json")]
    headers += [(b"grpc-timeout", timeout) for timeout in timeouts]
    await wire.app(scope(ENQUEUE, *headers), exchange.receive, exchange.send)
    assert exchange.status()[0] == code.value[0]
    assert wire.fallbacks == []


async def test_the_details_are_percent_encoded() -> None:
    wire = Wire()
    exchange = Exchange([body(enveloped(pb.EnqueueJobRequest(type="no spaces")))])
    await wire.app(scope(ENQUEUE), exchange.receive, exchange.send)
    headers = dict(exchange.sent[0]["headers"])
    assert headers[b"grpc-status"] == b"3"
    assert headers[b"grpc-message"] == (
        b"type%3A%20may%20contain%20only%20letters%2C%20digits%20and%20_%20.%20%3A%20-"
    )
    assert wire.fallbacks == []


async def _enqueue_three(wire: Wire) -> list[str]:
    request = pb.EnqueueJobRequest(type="t")
    return [(await wire.jobs.EnqueueJob(request, NO_DEADLINE)).job.id for _ in range(3)]


async def _states(wire: Wire, ids: list[str]) -> list[tuple[JobStatus, int]]:
    # Hand-backs run on tasks of their own: wait (bounded) until none is RUNNING.
    states: list[tuple[JobStatus, int]] = []
    for _ in range(100):
        jobs = [await wire.store.get(job_id) for job_id in ids]
        states = [(job.status, job.attempts) for job in jobs if job is not None]
        if all(status is not JobStatus.RUNNING for status, _ in states):
            break
        await asyncio.sleep(0.01)
    return states


async def test_a_claim_cancelled_as_it_answers_hands_its_leases_back() -> None:
    """The server's cancel lands while the watch winds down: not swallowed, leases given back."""
    task: asyncio.Future[None] | None = None

    async def cancel_soon() -> None:
        assert task is not None
        asyncio.get_running_loop().call_soon(task.cancel)

    wire = Wire(claim_after=cancel_soon)
    ids = await _enqueue_three(wire)
    exchange = Exchange([body(enveloped(wpb.ClaimJobsRequest(types=["t"], max_jobs=3)))])
    task = asyncio.ensure_future(wire.app(scope(CLAIM), exchange.receive, exchange.send))
    with pytest.raises(asyncio.CancelledError):
        await task
    assert wire.observed.calls == [(CLAIM, grpc.StatusCode.CANCELLED)]
    assert await _states(wire, ids) == [(JobStatus.PENDING, 0)] * 3


async def test_a_claim_whose_caller_leaves_as_it_answers_hands_its_leases_back() -> None:
    """The disconnect is seen after the servicer's own check: the fast path hands back."""
    exchange = Exchange([body(enveloped(wpb.ClaimJobsRequest(types=["t"], max_jobs=3)))])

    async def leave() -> None:
        exchange.gone.set()
        await asyncio.sleep(0)  # the watch reads the disconnect

    wire = Wire(claim_after=leave)
    ids = await _enqueue_three(wire)
    await wire.app(scope(CLAIM), exchange.receive, exchange.send)
    assert exchange.sent == []  # nobody to answer
    assert wire.observed.calls == [(CLAIM, grpc.StatusCode.CANCELLED)]
    assert await _states(wire, ids) == [(JobStatus.PENDING, 0)] * 3

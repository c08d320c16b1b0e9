"""What the client does when calls fail: the status table, deadlines, retries, auth metadata."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from jobqueue.client import (
    AsyncJobClient,
    DeadlineExceeded,
    InvalidJob,
    JobAlreadyFinished,
    JobNotFound,
    JobQueueClientError,
    JobStatus,
    PermissionDenied,
    QueueFull,
    RetryPolicy,
    ServerError,
    ServerUnavailable,
    Unauthenticated,
)
from jobqueue.domain import Outcome, OutcomeKind
from jobqueue.memory import MemoryStoreSettings
from mpataki.jobqueue.v1 import jobqueue_pb2 as pb
from tests._redis_server import free_port
from tests.client._servers import UnreliableStore, start_test_server
from tests.client.conftest import FAST_RETRY

PATIENT_RETRY = RetryPolicy(max_retries=30, initial_backoff_s=0.05, max_backoff_s=0.2)
"""Enough retries to outlast a server that is down for a few hundred milliseconds."""


class AbortingServicer:
    """Answers GetJob with ``code`` and GetQueueStats with OK; remembers each call's metadata.

    Registered by hand (not as a JobServiceServicer) because it serves only
    the two methods these tests call.
    """

    def __init__(self, code: grpc.StatusCode) -> None:
        self.code = code
        self.calls: list[dict[str, Any]] = []

    async def get_job(
        self, request: pb.GetJobRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.GetJobResponse:
        self.calls.append(dict(context.invocation_metadata() or ()))
        await context.abort(self.code, f"told to answer {self.code.name}")

    async def get_queue_stats(
        self, request: pb.GetQueueStatsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.GetQueueStatsResponse:
        self.calls.append(dict(context.invocation_metadata() or ()))
        return pb.GetQueueStatsResponse()

    def handler(self) -> grpc.GenericRpcHandler[Any, Any]:
        return grpc.method_handlers_generic_handler(
            "mpataki.jobqueue.v1.JobService",
            {
                "GetJob": grpc.unary_unary_rpc_method_handler(
                    self.get_job,
                    request_deserializer=pb.GetJobRequest.FromString,
                    response_serializer=pb.GetJobResponse.SerializeToString,
                ),
                "GetQueueStats": grpc.unary_unary_rpc_method_handler(
                    self.get_queue_stats,
                    request_deserializer=pb.GetQueueStatsRequest.FromString,
                    response_serializer=pb.GetQueueStatsResponse.SerializeToString,
                ),
            },
        )


async def aborting_server(code: grpc.StatusCode) -> tuple[grpc.aio.Server, AbortingServicer, int]:
    servicer = AbortingServicer(code)
    server = grpc.aio.server()
    server.add_generic_rpc_handlers([servicer.handler()])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, servicer, port


@pytest.fixture
async def stopped_later() -> AsyncIterator[list[grpc.aio.Server]]:
    servers: list[grpc.aio.Server] = []
    yield servers
    for server in servers:
        await server.stop(None)


@pytest.mark.parametrize(
    ("code", "error", "calls"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, InvalidJob, 1),
        (grpc.StatusCode.NOT_FOUND, JobNotFound, 1),
        (grpc.StatusCode.FAILED_PRECONDITION, JobAlreadyFinished, 1),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, QueueFull, 1),
        (grpc.StatusCode.UNAVAILABLE, ServerUnavailable, 3),
        # A server shutting down cancels calls in flight: retried like UNAVAILABLE.
        (grpc.StatusCode.CANCELLED, ServerUnavailable, 3),
        (grpc.StatusCode.DEADLINE_EXCEEDED, DeadlineExceeded, 1),
        (grpc.StatusCode.UNAUTHENTICATED, Unauthenticated, 1),
        (grpc.StatusCode.PERMISSION_DENIED, PermissionDenied, 1),
        (grpc.StatusCode.INTERNAL, ServerError, 1),
        (grpc.StatusCode.UNIMPLEMENTED, ServerError, 1),
    ],
)
async def test_every_status_code_becomes_its_exception_and_only_interruptions_are_retried(
    stopped_later: list[grpc.aio.Server],
    code: grpc.StatusCode,
    error: type[JobQueueClientError],
    calls: int,
) -> None:
    server, servicer, port = await aborting_server(code)
    stopped_later.append(server)
    retry = RetryPolicy(max_retries=2, initial_backoff_s=0.01)
    async with AsyncJobClient(target=f"127.0.0.1:{port}", retries=retry) as client:
        with pytest.raises(error) as caught:
            await client.get("any")
    assert type(caught.value) is error
    assert caught.value.code == code.name
    if code is not grpc.StatusCode.DEADLINE_EXCEEDED:
        assert f"told to answer {code.name}" in caught.value.message
    assert len(servicer.calls) == calls


async def test_the_auth_token_travels_as_bearer_metadata(
    stopped_later: list[grpc.aio.Server],
) -> None:
    server, servicer, port = await aborting_server(grpc.StatusCode.OK)
    stopped_later.append(server)
    async with AsyncJobClient(target=f"127.0.0.1:{port}", auth_token="s3cret") as client:
        await client.stats()
    async with AsyncJobClient(target=f"127.0.0.1:{port}") as client:
        await client.stats()
    assert servicer.calls[0]["authorization"] == "Bearer s3cret"
    assert "authorization" not in servicer.calls[1]


async def test_a_full_store_raises_queue_full() -> None:
    store = UnreliableStore(MemoryStoreSettings(max_jobs=2))
    server = await start_test_server(store)
    try:
        async with AsyncJobClient(target=f"127.0.0.1:{server.port}") as client:
            await client.enqueue("t")
            await client.enqueue("t")
            with pytest.raises(QueueFull, match="at most 2"):
                await client.enqueue("t")
    finally:
        await server.stop(None)
        await store.close()


async def test_a_call_past_its_deadline_raises_deadline_exceeded_without_retrying(
    store: UnreliableStore, client: AsyncJobClient
) -> None:
    job = await client.enqueue("t")
    store.stall = True
    async with AsyncJobClient(target=client.target, timeout_s=0.2, retries=FAST_RETRY) as hasty:
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded) as caught:
            await hasty.get(job.id)
    assert time.monotonic() - started < 1.5
    assert isinstance(caught.value, ServerUnavailable)
    assert store.get_calls == 1


async def test_unavailable_is_retried_until_the_store_is_back(
    store: UnreliableStore, client: AsyncJobClient
) -> None:
    job = await client.enqueue("t")
    store.fail_gets = 3
    assert (await client.get(job.id)).id == job.id
    assert store.get_calls == 4


async def test_retries_give_up_after_the_policy_allows(
    store: UnreliableStore, client: AsyncJobClient
) -> None:
    job = await client.enqueue("t")
    store.fail_gets = 100
    retry = RetryPolicy(max_retries=2, initial_backoff_s=0.01)
    async with AsyncJobClient(target=client.target, retries=retry) as impatient:
        with pytest.raises(ServerUnavailable, match="unavailable"):
            await impatient.get(job.id)
    assert store.get_calls == 3


async def test_an_unreachable_server_raises_server_unavailable() -> None:
    async with AsyncJobClient(target=f"127.0.0.1:{free_port()}", retries=0) as client:
        with pytest.raises(ServerUnavailable, match="unavailable"):
            await client.stats()


async def test_a_server_started_while_the_client_retries_is_reached(
    store: UnreliableStore,
) -> None:
    port = free_port()
    async with AsyncJobClient(target=f"127.0.0.1:{port}", retries=PATIENT_RETRY) as client:
        enqueue = asyncio.create_task(client.enqueue("t", b"late", idempotency_key="k1"))
        await asyncio.sleep(0.3)
        assert not enqueue.done()
        server = await start_test_server(store, port=port)
        try:
            job = await asyncio.wait_for(enqueue, 10)
        finally:
            await server.stop(None)
    assert (await store.get(job.id)) is not None


async def test_a_server_restarted_on_the_same_port_is_reached_again(
    store: UnreliableStore,
) -> None:
    port = free_port()
    server = await start_test_server(store, port=port)
    async with AsyncJobClient(target=f"127.0.0.1:{port}", retries=PATIENT_RETRY) as client:
        job = await client.enqueue("t")
        await server.stop(None)
        reading = asyncio.create_task(client.get(job.id))
        await asyncio.sleep(0.3)
        server = await start_test_server(store, port=port)
        try:
            assert (await asyncio.wait_for(reading, 10)).id == job.id
        finally:
            await server.stop(None)


async def test_wait_resumes_its_watch_across_a_server_restart(store: UnreliableStore) -> None:
    port = free_port()
    server = await start_test_server(store, port=port)
    async with AsyncJobClient(target=f"127.0.0.1:{port}", retries=PATIENT_RETRY) as client:
        job = await client.enqueue("t")
        waiting = asyncio.create_task(client.wait(job.id, timeout_s=10))
        await asyncio.sleep(0.2)
        await server.stop(None)
        await asyncio.sleep(0.2)
        server = await start_test_server(store, port=port)
        try:
            (lease,) = await store.claim(["t"], limit=1, lease_ms=10_000)
            await store.settle(
                [Outcome(job_id=job.id, token=lease.token, kind=OutcomeKind.COMPLETE, result=b"1")]
            )
            done = await asyncio.wait_for(waiting, 10)
        finally:
            await server.stop(None)
    assert done.status is JobStatus.COMPLETED
    assert done.json() == 1

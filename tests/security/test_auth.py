"""Bearer-token auth: every RPC but health answers UNAUTHENTICATED without a valid token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from jobqueue.grpc import (
    INVALID_TOKEN,
    MISSING_TOKEN,
    BearerTokenAuth,
    RunningServer,
    parse_tokens,
)
from jobqueue.memory import MemoryJobStore
from mpataki.jobqueue.v1 import (
    admin_pb2,
    jobqueue_pb2,
    jobqueue_pb2_grpc,
    schedule_pb2,
    worker_pb2,
    worker_pb2_grpc,
)
from tests.grpc.conftest import start_api
from tests.security._services import api_services

TOKEN = "s3cret-token-0123456789abcdef"
NEXT_TOKEN = "next-token-fedcba9876543210"

RPCS = [
    (f"/{service.full_name}/{method.name}", method.server_streaming)
    for module in (jobqueue_pb2, worker_pb2, admin_pb2, schedule_pb2)
    for service in module.DESCRIPTOR.services_by_name.values()
    for method in service.methods
]


@dataclass
class Secured:
    server: RunningServer
    channel: grpc.aio.Channel


@pytest.fixture
async def secured() -> AsyncIterator[Secured]:
    store = MemoryJobStore()
    server = await start_api(store, interceptors=[BearerTokenAuth([TOKEN, NEXT_TOKEN])])
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        yield Secured(server, channel)
    finally:
        await channel.close(None)
        await server.stop(None)
        await store.close()


def bearer(token: str, scheme: str = "Bearer") -> tuple[tuple[str, str]]:
    return (("authorization", f"{scheme} {token}"),)


async def invoke(
    channel: grpc.aio.Channel,
    method: str,
    streaming: bool,
    metadata: tuple[tuple[str, str], ...] | None,
) -> None:
    """Call ``method`` with an empty request as raw bytes; raises AioRpcError when it fails."""
    if streaming:
        stream = channel.unary_stream(method, None, None)(b"", metadata=metadata, timeout=5)
        async for _ in stream:
            break
        stream.cancel()
    else:
        await channel.unary_unary(method, None, None)(b"", metadata=metadata, timeout=5)


async def call_raw(
    channel: grpc.aio.Channel,
    method: str,
    streaming: bool,
    metadata: tuple[tuple[str, str], ...] | None,
) -> grpc.StatusCode:
    """The status code a call with an empty request ends with."""
    try:
        await invoke(channel, method, streaming, metadata)
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


def test_the_test_covers_every_rpc() -> None:
    # Every service of every API file: a new RPC or service is covered by itself.
    covered = {method.split("/")[1] for method, _ in RPCS}
    assert covered == set(api_services())
    assert ("/mpataki.jobqueue.v1.JobService/WatchJob", True) in RPCS


@pytest.mark.parametrize(("method", "streaming"), RPCS, ids=[m for m, _ in RPCS])
async def test_every_rpc_without_a_token_is_unauthenticated(
    secured: Secured, method: str, streaming: bool
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await invoke(secured.channel, method, streaming, None)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert caught.value.details() == MISSING_TOKEN


@pytest.mark.parametrize(
    "metadata",
    [
        bearer("wrong-token-0123456789abcdef"),
        bearer(TOKEN[:-1]),
        bearer(TOKEN + "x"),
        bearer(""),
        bearer(TOKEN, scheme="Basic"),
        (("authorization", TOKEN),),
        (("authorization", f"Bearer {TOKEN},{NEXT_TOKEN}"),),
    ],
    ids=["wrong", "prefix", "longer", "empty", "basic", "no-scheme", "both-joined"],
)
@pytest.mark.parametrize(("method", "streaming"), RPCS, ids=[m for m, _ in RPCS])
async def test_every_rpc_with_a_wrong_token_is_unauthenticated(
    secured: Secured,
    method: str,
    streaming: bool,
    metadata: tuple[tuple[str, str], ...],
) -> None:
    assert await call_raw(secured.channel, method, streaming, metadata) == (
        grpc.StatusCode.UNAUTHENTICATED
    )


async def test_a_wrong_token_is_named_as_such(secured: Secured) -> None:
    jobs = jobqueue_pb2_grpc.JobServiceStub(secured.channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await jobs.GetJob(jobqueue_pb2.GetJobRequest(id="x"), metadata=bearer("nope"))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert caught.value.details() == INVALID_TOKEN


@pytest.mark.parametrize(("method", "streaming"), RPCS, ids=[m for m, _ in RPCS])
async def test_every_rpc_with_the_token_reaches_the_servicer(
    secured: Secured, method: str, streaming: bool
) -> None:
    # An empty request is refused or answered by the servicer itself; never UNAUTHENTICATED.
    code = await call_raw(secured.channel, method, streaming, bearer(TOKEN))
    assert code != grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("token", [TOKEN, NEXT_TOKEN])
async def test_any_configured_token_works_for_a_whole_flow(secured: Secured, token: str) -> None:
    jobs = jobqueue_pb2_grpc.JobServiceStub(secured.channel)
    workers = worker_pb2_grpc.WorkerServiceStub(secured.channel)
    auth = bearer(token, scheme="bearer")  # the scheme is case-insensitive (RFC 7235)
    job = (await jobs.EnqueueJob(jobqueue_pb2.EnqueueJobRequest(type="t"), metadata=auth)).job
    claimed = await workers.ClaimJobs(worker_pb2.ClaimJobsRequest(types=["t"]), metadata=auth)
    assert [lease.job.id for lease in claimed.leases] == [job.id]
    got = await jobs.GetJob(jobqueue_pb2.GetJobRequest(id=job.id), metadata=auth)
    assert got.job.status == jobqueue_pb2.JOB_STATUS_RUNNING


async def test_health_stays_open_without_a_token(secured: Secured) -> None:
    health = health_pb2_grpc.HealthStub(secured.channel)
    answer = await health.Check(health_pb2.HealthCheckRequest())
    assert answer.status == health_pb2.HealthCheckResponse.SERVING
    watch = health.Watch(health_pb2.HealthCheckRequest())
    async for update in watch:
        assert update.status == health_pb2.HealthCheckResponse.SERVING
        break
    watch.cancel()


async def reflect(
    channel: grpc.aio.Channel, metadata: tuple[tuple[str, str], ...] | None
) -> reflection_pb2.ServerReflectionResponse:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    call = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), metadata=metadata
    )
    async for response in call:
        answer: reflection_pb2.ServerReflectionResponse = response
        return answer
    raise AssertionError("no reflection answer")


async def test_reflection_needs_the_token(secured: Secured) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await reflect(secured.channel, None)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    answer = await reflect(secured.channel, bearer(TOKEN))
    assert answer.list_services_response.service


async def test_an_unknown_method_stays_unimplemented(secured: Secured) -> None:
    # The schema is public; refusing unknown methods as UNAUTHENTICATED would hide
    # nothing, and answering UNIMPLEMENTED keeps made-up names out of the metrics.
    code = await call_raw(secured.channel, "/mpataki.jobqueue.v1.JobService/Nope", False, None)
    assert code == grpc.StatusCode.UNIMPLEMENTED


def test_tokens_parse_from_commas_and_lines() -> None:
    assert parse_tokens(" a1 , b2,\nc3\n\n, ") == ["a1", "b2", "c3"]
    assert parse_tokens("") == []
    with pytest.raises(ValueError, match="printable ASCII"):
        parse_tokens("caf\u00e9")
    with pytest.raises(ValueError, match="printable ASCII"):
        parse_tokens("a\tb")


def test_the_interceptor_needs_a_token_and_compares_exactly() -> None:
    with pytest.raises(ValueError, match="at least one"):
        BearerTokenAuth([])
    auth = BearerTokenAuth(["abc"])
    assert auth.accepts("Bearer abc")
    assert auth.accepts(b"BEARER  abc ")
    assert not auth.accepts("Bearer abcd")
    assert not auth.accepts("Bearer ab")
    assert not auth.accepts("Bearer \u00e9")
    assert not auth.accepts(b"Bearer \xff")
    assert not auth.accepts(None)
    assert not auth.accepts("")

"""One port, three protocols: what the Go CLI, curl, browsers and gRPC clients each get.

Every case runs over every wire (Connect, gRPC-Web and gRPC; HTTP/1.1 and
HTTP/2; binary and JSON) against the real wire app, and the raw HTTP/1.1
cases send exactly the bytes the seed's Go CLI and curl send.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from connectrpc.code import Code
from connectrpc.errors import ConnectError

from jobqueue.memory import MemoryJobStore
from jobqueue_server._metrics import Metrics
from mpataki.jobqueue.v1 import jobqueue_pb2 as pb
from tests.server._wire import WIRES, Wire, WireServer, method, start_wire, wire_client

UNKNOWN_ID = "0190c3a2-7d5e-7b1c-9a4f-3e2d1c0b9a87"
ENQUEUE_PATH = "/mpataki.jobqueue.v1.JobService/EnqueueJob"


@pytest.fixture
async def wire_server() -> AsyncIterator[WireServer]:
    server = await start_wire(MemoryJobStore())
    try:
        yield server
    finally:
        await server.stop()


@dataclass
class HttpAnswer:
    status: int
    headers: dict[str, str]
    body: bytes


async def http1(port: int, raw: bytes) -> HttpAnswer:
    """Send ``raw`` on a fresh connection and read one HTTP/1.1 response (Content-Length bodies)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        assert status_line.startswith("HTTP/1.1 "), status_line
        headers = {}
        for line in lines:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        body = await asyncio.wait_for(
            reader.readexactly(int(headers["content-length"])), timeout=10
        )
        if headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        return HttpAnswer(int(status_line.split()[1]), headers, body)
    finally:
        writer.close()
        await writer.wait_closed()


def go_cli_request(port: int, body: bytes) -> bytes:
    """The request connect-go's unary client writes over HTTP/1.1 (net/http's header order)."""
    return (
        f"POST {ENQUEUE_PATH} HTTP/1.1\r\n"
        f"Host: localhost:{port}\r\n"
        "User-Agent: connect-go/1.18.1 (go1.23.4)\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Accept-Encoding: gzip\r\n"
        "Connect-Protocol-Version: 1\r\n"
        "Content-Type: application/proto\r\n"
        "\r\n"
    ).encode() + body


def curl_json_request(port: int, path: str, document: object) -> bytes:
    """What ``curl -H 'Content-Type: application/json' -d '<json>' URL`` sends."""
    body = json.dumps(document).encode()
    return (
        f"POST {path} HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\n"
        "User-Agent: curl/8.5.0\r\n"
        "Accept: */*\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "\r\n"
    ).encode() + body


async def stored(server: WireServer) -> int:
    stats = await server.store.stats()
    return sum(row.pending + row.running + row.completed for row in stats.types)


async def test_the_go_clis_exact_bytes_enqueue_a_job(wire_server: WireServer) -> None:
    port = wire_server.server.port
    request = pb.EnqueueJobRequest(
        type="send_email", payload=b'{"to":"test@example.com"}', execution_time_ms=1640000000000
    )
    answer = await http1(port, go_cli_request(port, request.SerializeToString()))
    assert answer.status == 200, answer.body
    assert answer.headers["content-type"] == "application/proto"
    job = pb.EnqueueJobResponse.FromString(answer.body).job
    assert (job.type, job.payload, job.status) == (
        "send_email",
        b'{"to":"test@example.com"}',
        pb.JOB_STATUS_PENDING,
    )
    assert job.execution_time_ms == 1640000000000
    read = await wire_server.store.get(job.id)
    assert read is not None
    assert read.type == "send_email"


async def test_curl_with_json_enqueues_a_job(wire_server: WireServer) -> None:
    port = wire_server.server.port
    document = {"type": "send_email", "payload": "eyJ0byI6InRlc3RAZXhhbXBsZS5jb20ifQ=="}
    answer = await http1(port, curl_json_request(port, ENQUEUE_PATH, document))
    assert answer.status == 200, answer.body
    assert answer.headers["content-type"] == "application/json"
    job = json.loads(answer.body)["job"]
    assert job["type"] == "send_email"
    assert job["payload"] == document["payload"]
    assert job["status"] == "JOB_STATUS_PENDING"
    assert await stored(wire_server) == 1


BAD_REQUESTS = [
    ("GetJob", {"id": UNKNOWN_ID}, "not_found", 404),
    ("GetJob", {"id": "not-a-job-id"}, "invalid_argument", 400),
    ("CancelJob", {"id": UNKNOWN_ID}, "not_found", 404),
    ("CancelJob", {"id": ""}, "invalid_argument", 400),
    ("EnqueueJob", {"type": "", "payload": ""}, "invalid_argument", 400),
    ("EnqueueJob", {"type": "t", "payload": "QUJD" * 400}, "invalid_argument", 400),
    ("EnqueueJob", {"type": 7}, "invalid_argument", 400),
]
"""Method, JSON body, Connect code and HTTP status, as the Connect spec maps them."""


@pytest.mark.parametrize(
    ("rpc", "document", "code", "status"),
    BAD_REQUESTS,
    ids=[f"{rpc}-{code}-{i}" for i, (rpc, _, code, _) in enumerate(BAD_REQUESTS)],
)
async def test_connect_errors_carry_the_specs_code_and_http_status(
    wire_server: WireServer, rpc: str, document: object, code: str, status: int
) -> None:
    port = wire_server.server.port
    path = f"/mpataki.jobqueue.v1.JobService/{rpc}"
    answer = await http1(port, curl_json_request(port, path, document))
    assert answer.status == status, answer.body
    assert json.loads(answer.body)["code"] == code
    assert await stored(wire_server) == 0


async def test_an_unknown_method_is_404_and_nothing_else(wire_server: WireServer) -> None:
    port = wire_server.server.port
    answer = await http1(
        port, curl_json_request(port, "/mpataki.jobqueue.v1.JobService/DropAll", {})
    )
    assert answer.status == 404


@pytest.mark.parametrize("wire", WIRES, ids=[w.name for w in WIRES])
async def test_every_wire_maps_domain_errors_alike_and_stores_nothing(
    wire_server: WireServer, wire: Wire
) -> None:
    cases = [
        ("GetJob", pb.GetJobRequest(id=UNKNOWN_ID), Code.NOT_FOUND),
        ("GetJob", pb.GetJobRequest(id="not-a-job-id"), Code.INVALID_ARGUMENT),
        ("CancelJob", pb.CancelJobRequest(id=UNKNOWN_ID), Code.NOT_FOUND),
        ("EnqueueJob", pb.EnqueueJobRequest(type="", payload=b"x"), Code.INVALID_ARGUMENT),
        ("EnqueueJob", pb.EnqueueJobRequest(type="t", payload=b"x" * 2048), Code.INVALID_ARGUMENT),
    ]
    async with wire_client(wire_server.url, wire) as client:
        for rpc, request, code in cases:
            with pytest.raises(ConnectError) as caught:
                await client.unary("JobService", rpc, request)
            assert caught.value.code == code, (rpc, caught.value.message)
    assert await stored(wire_server) == 0


@pytest.mark.parametrize("wire", WIRES, ids=[w.name for w in WIRES])
async def test_every_wire_runs_the_seed_flow_and_streams_watch_job(
    wire_server: WireServer, wire: Wire
) -> None:
    async with wire_client(wire_server.url, wire) as client:
        enqueued = await client.unary(
            "JobService",
            "EnqueueJob",
            pb.EnqueueJobRequest(type="send_email", payload=b"{}", execution_time_ms=2**42),
        )
        job_id = enqueued.job.id
        got = await client.unary("JobService", "GetJob", pb.GetJobRequest(id=job_id))
        assert got.job == enqueued.job

        # WatchJob: the job now, then its end, live on the open stream.
        stream = client.client.execute_server_stream(
            request=pb.WatchJobRequest(id=job_id),
            method=method("JobService", "WatchJob"),
            timeout_ms=10_000,
        )
        first = await anext(stream)
        assert first.job.status == pb.JOB_STATUS_PENDING
        cancelled = await client.unary("JobService", "CancelJob", pb.CancelJobRequest(id=job_id))
        assert cancelled.job.status == pb.JOB_STATUS_CANCELLED
        rest = [response.job.status async for response in stream]
        assert rest[-1:] == [pb.JOB_STATUS_CANCELLED]

        stats = await client.unary("JobService", "GetQueueStats", pb.GetQueueStatsRequest())
        assert [(row.type, row.cancelled) for row in stats.types] == [("send_email", 1)]


async def test_healthz_and_metrics_share_the_port() -> None:
    metrics = Metrics()
    server = await start_wire(MemoryJobStore(), observer=metrics, metrics=metrics.exposition)
    try:
        port = server.server.port
        health = await http1(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (health.status, health.body) == (200, b"ok\n")
        refused = await http1(port, curl_json_request(port, ENQUEUE_PATH, {"type": ""}))
        assert refused.status == 400
        answer = await http1(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        assert answer.status == 200
        assert answer.headers["content-type"].startswith("text/plain")
        line = f'jobqueue_rpc_requests_total{{code="INVALID_ARGUMENT",method="{ENQUEUE_PATH}"}} 1.0'
        assert line in answer.body.decode().splitlines()
    finally:
        await server.stop()


async def test_healthz_answers_503_once_the_server_is_stopping(wire_server: WireServer) -> None:
    await wire_server.health.shutdown()
    answer = await http1(wire_server.server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.status == 503


@pytest.mark.parametrize("wire", WIRES, ids=[w.name for w in WIRES])
async def test_a_message_over_the_limit_is_resource_exhausted_on_every_wire(
    wire_server: WireServer, wire: Wire
) -> None:
    # 1 MiB is the tests' message limit (TEST_OPTIONS); the payload limit is far smaller,
    # so only the transport can answer RESOURCE_EXHAUSTED here.
    huge = pb.EnqueueJobRequest(type="t", payload=b"x" * (1024 * 1024 + 1))
    async with wire_client(wire_server.url, wire) as client:
        with pytest.raises(ConnectError) as caught:
            await client.unary("JobService", "EnqueueJob", huge)
    assert caught.value.code == Code.RESOURCE_EXHAUSTED, caught.value.message
    assert await stored(wire_server) == 0

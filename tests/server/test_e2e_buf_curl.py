"""The seed README's grpcurl flow, driven by ``buf curl`` against a real server process.

buf curl learns the API from the server's reflection service (v1 or v1alpha)
or from the .proto sources, so it is a client that knows nothing of our code:
exactly what a user of the Go original would point at this server. The flow
runs over each protocol the one port speaks — gRPC, Connect and gRPC-Web —
on HTTP/2 and, where the protocol allows, HTTP/1.1.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator

import pytest
from google.protobuf import descriptor_pb2

from tests.server._process import (
    BUF,
    HOW_TO_GET_BUF,
    CurlMode,
    CurlResult,
    ServerProcess,
    buf_curl,
)
from tests.server._process import rpc as rpc_over

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

PAYLOAD = "eyJ0byI6InRlc3RAZXhhbXBsZS5jb20ifQ=="  # {"to":"test@example.com"}, as in the seed
MODES = [
    CurlMode("grpc", http2=True, reflect="grpc-v1alpha"),
    CurlMode("grpc", http2=True, reflect="grpc-v1"),
    CurlMode("connect", http2=True, reflect="grpc-v1"),
    CurlMode("connect", http2=False, reflect=None),
    CurlMode("grpcweb", http2=True, reflect="grpc-v1alpha"),
    CurlMode("grpcweb", http2=False, reflect=None),
]
REFLECTING = [
    CurlMode(protocol, http2=True, reflect=reflect)
    for protocol in ("grpc", "connect", "grpcweb")
    for reflect in ("grpc-v1", "grpc-v1alpha")
]
# buf curl exits with 8 times the status code when the RPC fails, whatever the protocol.
EXIT_INVALID_ARGUMENT = 3 * 8
EXIT_NOT_FOUND = 5 * 8
EXIT_FAILED_PRECONDITION = 9 * 8


@pytest.fixture(params=["memory", "redis"])
def server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    if not BUF.exists():
        pytest.fail(HOW_TO_GET_BUF, pytrace=False)
    env: dict[str, str] = {}
    if request.param == "redis":
        env["JOBQUEUE_REDIS_URL"] = request.getfixturevalue("redis_url")
        env["JOBQUEUE_KEY_PREFIX"] = request.getfixturevalue("key_prefix").rstrip(":")
    process = ServerProcess(env=env)
    process.start()
    try:
        yield process
    finally:
        code, output = process.stop()
        assert code == 0, output


def test_list_services_and_methods(server: ServerProcess) -> None:
    for mode in REFLECTING:
        services = buf_curl(server.base_url, "--list-services", server.base_url, mode=mode)
        assert services.code == 0, (mode.name, services.stderr)
        assert {
            "mpataki.jobqueue.v1.JobService",
            "mpataki.jobqueue.v1.WorkerService",
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        } <= set(services.stdout.split()), mode.name
        methods = buf_curl(server.base_url, "--list-methods", server.base_url, mode=mode)
        assert methods.code == 0, (mode.name, methods.stderr)
        for name in ("EnqueueJob", "GetJob", "CancelJob"):
            assert f"mpataki.jobqueue.v1.JobService/{name}" in methods.stdout.split()


def test_describe_shows_the_seed_contract(server: ServerProcess) -> None:
    # grpcurl's `describe` reads the reflection service; buf curl can call it directly.
    answer = buf_curl(
        server.base_url,
        f"{server.base_url}/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        data={"file_containing_symbol": "mpataki.jobqueue.v1.JobService"},
    )
    assert answer.code == 0, answer.stderr
    encoded = answer.json()["fileDescriptorResponse"]["fileDescriptorProto"]
    files = [descriptor_pb2.FileDescriptorProto.FromString(base64.b64decode(e)) for e in encoded]
    (api,) = [f for f in files if f.name == "mpataki/jobqueue/v1/jobqueue.proto"]
    assert api.package == "mpataki.jobqueue.v1"
    (service,) = [s for s in api.service if s.name == "JobService"]
    methods = {m.name: (m.input_type, m.output_type) for m in service.method}
    assert methods["EnqueueJob"] == (
        ".mpataki.jobqueue.v1.EnqueueJobRequest",
        ".mpataki.jobqueue.v1.EnqueueJobResponse",
    )
    messages = {m.name: {f.name: f.number for f in m.field} for m in api.message_type}
    assert (
        messages["EnqueueJobRequest"].items()
        >= {
            "type": 1,
            "payload": 2,
            "execution_time_ms": 3,
        }.items()
    )
    assert (
        messages["Job"].items()
        >= {
            "id": 1,
            "type": 2,
            "payload": 3,
            "status": 4,
            "execution_time_ms": 5,
            "created_at": 6,
            "updated_at": 7,
        }.items()
    )


@pytest.mark.parametrize("mode", MODES, ids=[mode.name for mode in MODES])
def test_the_seed_flow(server: ServerProcess, mode: CurlMode) -> None:
    url = server.base_url

    def rpc(url: str, method: str, data: object) -> CurlResult:
        return rpc_over(url, method, data, mode)

    scheduled = rpc(
        url,
        "EnqueueJob",
        {"type": "send_email", "payload": PAYLOAD, "execution_time_ms": 1640000000000},
    )
    assert scheduled.code == 0, scheduled.stderr
    job = scheduled.json()["job"]
    assert job["type"] == "send_email"
    assert job["payload"] == PAYLOAD
    assert job["status"] == "JOB_STATUS_PENDING"
    assert job["executionTimeMs"] == "1640000000000"

    before = time.time_ns() // 1_000_000
    immediate = rpc(url, "EnqueueJob", {"type": "send_email", "payload": PAYLOAD})
    assert immediate.code == 0, immediate.stderr
    now_job = immediate.json()["job"]
    assert before - 1000 <= int(now_job["executionTimeMs"]) <= time.time_ns() // 1_000_000
    assert now_job["id"] != job["id"]

    got = rpc(url, "GetJob", {"id": job["id"]})
    assert got.code == 0, got.stderr
    assert got.json()["job"] == job

    cancelled = rpc(url, "CancelJob", {"id": job["id"]})
    assert cancelled.code == 0, cancelled.stderr
    after = rpc(url, "GetJob", {"id": job["id"]}).json()["job"]
    assert after["status"] == "JOB_STATUS_CANCELLED"
    # WatchJob streams a finished job once, then ends.
    watched = rpc(url, "WatchJob", {"id": job["id"]})
    assert watched.code == 0, watched.stderr
    assert watched.json()["job"]["status"] == "JOB_STATUS_CANCELLED"

    again = rpc(url, "CancelJob", {"id": job["id"]})
    assert again.code == EXIT_FAILED_PRECONDITION, again.stdout + again.stderr
    unknown = rpc(url, "GetJob", {"id": "0190c3a2-7d5e-7b1c-9a4f-3e2d1c0b9a87"})
    assert unknown.code == EXIT_NOT_FOUND, unknown.stdout + unknown.stderr
    malformed = rpc(url, "GetJob", {"id": "job-id-here"})
    assert malformed.code == EXIT_INVALID_ARGUMENT, malformed.stdout + malformed.stderr
    empty_type = rpc(url, "EnqueueJob", {"type": "", "payload": PAYLOAD})
    assert empty_type.code == EXIT_INVALID_ARGUMENT

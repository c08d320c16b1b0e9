"""The server process over a Redis we can stop: jobs survive restarts, health follows Redis."""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2

from mpataki.jobqueue.v1 import jobqueue_pb2 as pb
from mpataki.jobqueue.v1 import jobqueue_pb2_grpc
from tests._redis_server import RedisProcess
from tests.server._process import ServerProcess, wait_for_health

pytestmark = [pytest.mark.integration, pytest.mark.redis]

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.fixture
def redis() -> Iterator[RedisProcess]:
    try:
        # Append-only, so the data outlives the stop and restart of one test.
        server = RedisProcess(appendonly=True)
    except RuntimeError as error:
        pytest.fail(str(error), pytrace=False)
    server.start()
    try:
        yield server
    finally:
        server.close()


def jobs_stub(channel: grpc.Channel) -> jobqueue_pb2_grpc.JobServiceStub:
    return jobqueue_pb2_grpc.JobServiceStub(channel)


def test_jobs_survive_a_server_restart(redis: RedisProcess) -> None:
    # The seed's REDIS_ADDR form, so Go-era deployments keep working.
    env = {"REDIS_ADDR": f"127.0.0.1:{redis.port}"}
    first = ServerProcess(env=env)
    first.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{first.port}") as channel:
            job = jobs_stub(channel).EnqueueJob(pb.EnqueueJobRequest(type="keep", payload=b"1")).job
    finally:
        code, output = first.stop()
    assert code == 0, output
    assert "in-memory" not in output

    second = ServerProcess(env=env, port=first.port)
    second.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{second.port}") as channel:
            again = jobs_stub(channel).GetJob(pb.GetJobRequest(id=job.id)).job
    finally:
        second.stop()
    assert again == job


def test_health_follows_redis_and_the_server_keeps_answering(redis: RedisProcess) -> None:
    server = ServerProcess(env={"JOBQUEUE_REDIS_URL": redis.url})
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = jobs_stub(channel)
            job = stub.EnqueueJob(pb.EnqueueJobRequest(type="t")).job

            redis.stop()
            wait_for_health(server.port, NOT_SERVING, timeout_s=10)
            started = time.monotonic()
            with pytest.raises(grpc.RpcError) as caught:
                stub.GetJob(pb.GetJobRequest(id=job.id), timeout=15)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
            assert time.monotonic() - started < 10

            redis.start()
            wait_for_health(server.port, SERVING, timeout_s=10)
            assert stub.GetJob(pb.GetJobRequest(id=job.id), timeout=5).job.id == job.id
    finally:
        code, output = server.stop()
    assert code == 0, output

"""Per-RPC metrics: calls by method and status code, latency histograms, on the metrics port."""

from __future__ import annotations

import asyncio
import urllib.request

import grpc
import pytest
from pydantic import SecretStr

from jobqueue.memory import MemoryJobStore
from jobqueue_server import App, Container, ServerSettings
from mpataki.jobqueue.v1 import jobqueue_pb2 as pb
from mpataki.jobqueue.v1 import jobqueue_pb2_grpc

TOKEN = "metrics-token-0123456789"
ENQUEUE = "/mpataki.jobqueue.v1.JobService/EnqueueJob"


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text: str = response.read().decode()
        return text


def sample(text: str, name: str, **labels: str) -> float | None:
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{{wanted}}} "):
            return float(line.rsplit(" ", 1)[1])
    return None


async def test_calls_are_counted_by_method_and_code_and_timed() -> None:
    container = Container()
    container.settings.override(
        ServerSettings(host="127.0.0.1", port=0, metrics_port=0, auth_token=SecretStr(TOKEN))
    )
    with container.store.override(MemoryJobStore()):
        app = App(container)
        await app.start()
        try:
            assert app.metrics_port
            async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
                jobs = jobqueue_pb2_grpc.JobServiceStub(channel)
                auth = (("authorization", f"Bearer {TOKEN}"),)
                for _ in range(3):
                    await jobs.EnqueueJob(pb.EnqueueJobRequest(type="t"), metadata=auth)
                with pytest.raises(grpc.aio.AioRpcError):
                    await jobs.EnqueueJob(pb.EnqueueJobRequest(type="t"))
                with pytest.raises(grpc.aio.AioRpcError):
                    await jobs.EnqueueJob(pb.EnqueueJobRequest(type="no spaces"), metadata=auth)
            await asyncio.sleep(0.05)
            text = await asyncio.to_thread(scrape, app.metrics_port)
        finally:
            await app.stop()
    requests = "jobqueue_rpc_requests_total"
    assert sample(text, requests, method=ENQUEUE, code="OK") == 3
    assert sample(text, requests, method=ENQUEUE, code="UNAUTHENTICATED") == 1
    assert sample(text, requests, method=ENQUEUE, code="INVALID_ARGUMENT") == 1
    assert sample(text, "jobqueue_rpc_duration_seconds_count", method=ENQUEUE) == 5
    assert sample(text, "jobqueue_rpc_duration_seconds_bucket", method=ENQUEUE, le="60.0") == 5


async def test_without_a_metrics_port_nothing_is_observed() -> None:
    container = Container()
    container.settings.override(ServerSettings(host="127.0.0.1", port=0))
    with container.store.override(MemoryJobStore()):
        app = App(container)
        await app.start()
        try:
            assert app.metrics_port is None
        finally:
            await app.stop()

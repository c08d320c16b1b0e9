"""Priorities through both SDKs and ``jobqueue submit --priority``, over a real gRPC server."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from jobqueue.client import AsyncJobClient, InvalidJob, JobClient, JobSpec
from tests.client.test_cli import run_cli
from tests.client.test_gates import GateServer


@pytest.fixture
def server() -> Iterator[GateServer]:
    running = GateServer()
    yield running
    running.stop()


def claimed(server: GateServer, job_type: str) -> list[str]:
    leases = server.run(server.store.claim([job_type], limit=100, lease_ms=30_000))
    return [lease.job.id for lease in leases]


def test_the_blocking_client_sends_priorities(server: GateServer) -> None:
    with JobClient(target=server.target, timeout_s=5) as client:
        low = client.enqueue("p", priority=-3)
        plain = client.enqueue("p")
        high, also_high = client.enqueue_many([JobSpec("p", priority=9), JobSpec("p", priority=9)])
        assert (low.priority, plain.priority, high.priority) == (-3, 0, 9)
        assert client.get(high.id).priority == 9
        assert low.to_dict()["priority"] == -3
        with pytest.raises(InvalidJob, match="priority"):
            client.enqueue("p", priority=101)
    assert claimed(server, "p") == [high.id, also_high.id, plain.id, low.id]


async def test_the_async_client_sends_priorities(server: GateServer) -> None:
    async with AsyncJobClient(target=server.target, timeout_s=5) as client:
        first = await client.enqueue("q", priority=-1)
        second = await client.enqueue("q", priority=1)
    assert (first.priority, second.priority) == (-1, 1)
    assert claimed(server, "q") == [second.id, first.id]


@pytest.mark.integration
def test_submit_takes_a_priority(server: GateServer) -> None:
    submitted = run_cli(server.target, "submit", "r", "x", "--priority", "7", "--json")
    assert submitted.code == 0, submitted.stderr
    assert json.loads(submitted.stdout)["priority"] == 7
    refused = run_cli(server.target, "submit", "r", "x", "--priority", "101")
    assert refused.code == 2
    assert "--priority" in refused.stderr

"""Limit keys through both SDKs and ``jobqueue submit --limit-key``, over a real gRPC server."""

from __future__ import annotations

import json
from collections import Counter
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


def claimed_keys(server: GateServer, job_type: str, limit: int) -> Counter[str | None]:
    leases = server.run(server.store.claim([job_type], limit=limit, lease_ms=30_000))
    return Counter(lease.job.limit_key for lease in leases)


def test_the_blocking_client_sends_limit_keys(server: GateServer) -> None:
    with JobClient(target=server.target, timeout_s=5) as client:
        client.set_type_limits("k", key_concurrency=1)
        acme = client.enqueue("k", limit_key="acme")
        more = client.enqueue_many([JobSpec("k", limit_key="acme"), JobSpec("k", limit_key="zeta")])
        plain = client.enqueue("k")
        assert (acme.limit_key, plain.limit_key) == ("acme", None)
        assert [job.limit_key for job in more] == ["acme", "zeta"]
        assert client.get(acme.id).limit_key == "acme"
        assert acme.to_dict()["limit_key"] == "acme"
        for bad in ("", "has space", "x" * 129):
            with pytest.raises(InvalidJob, match="limit_key"):
                client.enqueue("k", limit_key=bad)
        with pytest.raises(InvalidJob, match="limit_key"):
            client.enqueue("k", limit_key="acme", priority=3)
        assert client.stats().total.pending == 4
    # One running per key: acme's second job waits.
    assert claimed_keys(server, "k", 10) == {"acme": 1, "zeta": 1, None: 1}


async def test_the_async_client_sends_limit_keys(server: GateServer) -> None:
    async with AsyncJobClient(target=server.target, timeout_s=5) as client:
        job = await client.enqueue("a", limit_key="tenant-7")
        assert job.limit_key == "tenant-7"
        assert (await client.get(job.id)).limit_key == "tenant-7"


@pytest.mark.integration
def test_submit_takes_a_limit_key(server: GateServer) -> None:
    submitted = run_cli(server.target, "submit", "r", "x", "--limit-key", "acme", "--json")
    assert submitted.code == 0, submitted.stderr
    assert json.loads(submitted.stdout)["limit_key"] == "acme"
    refused = run_cli(server.target, "submit", "r", "x", "--limit-key", "a b")
    assert refused.code != 0
    assert "limit_key" in refused.stderr

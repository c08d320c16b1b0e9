"""SettleJobs with a claim (the settle that claims), on every protocol of the one port.

Its request and answer are additive fields of SettleJobs, so every client of
the API can send them: gRPC, Connect (binary and JSON) and gRPC-Web. A bad
claim is refused before the batch settles, the same on each.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from connectrpc.code import Code
from connectrpc.errors import ConnectError

from jobqueue.domain import JobStatus
from jobqueue.memory import MemoryJobStore
from mpataki.jobqueue.v1 import jobqueue_pb2 as pb
from mpataki.jobqueue.v1 import worker_pb2 as wpb
from tests.server._wire import WIRES, Wire, WireClient, WireServer, start_wire, wire_client


@pytest.fixture
async def wire_server() -> AsyncIterator[WireServer]:
    store = MemoryJobStore()
    server = await start_wire(store)
    try:
        yield server
    finally:
        await server.stop()
        await store.close()


async def leased(client: WireClient, count: int) -> wpb.Lease:
    """Enqueue ``count`` jobs of type "t" and claim one of them."""
    for _ in range(count):
        await client.unary("JobService", "EnqueueJob", pb.EnqueueJobRequest(type="t"))
    claim = wpb.ClaimJobsRequest(types=["t"], max_jobs=1, lease_ms=30_000)
    (lease,) = (await client.unary("WorkerService", "ClaimJobs", claim)).leases
    return lease  # type: ignore[no-any-return]


def done(lease: wpb.Lease) -> wpb.Outcome:
    return wpb.Outcome(job_id=lease.job.id, token=lease.token, kind=wpb.OUTCOME_KIND_COMPLETE)


@pytest.mark.parametrize("wire", WIRES, ids=[w.name for w in WIRES])
async def test_a_settle_with_a_claim_answers_the_next_leases(
    wire_server: WireServer, wire: Wire
) -> None:
    async with wire_client(wire_server.url, wire) as client:
        lease = await leased(client, 4)
        request = wpb.SettleJobsRequest(
            outcomes=[done(lease)],
            claim=wpb.ClaimJobsRequest(types=["t"], max_jobs=2, lease_ms=30_000, wait_ms=60_000),
        )
        answer = await client.unary("WorkerService", "SettleJobs", request)
        assert list(answer.accepted) == [True]
        assert len(answer.leases) == 2
        assert all(x.job.status == pb.JOB_STATUS_RUNNING and x.token for x in answer.leases)
        assert lease.job.id not in {x.job.id for x in answer.leases}
        # Without a claim, SettleJobs answers as it always did: no leases.
        plain = wpb.SettleJobsRequest(outcomes=[done(x) for x in answer.leases])
        answer = await client.unary("WorkerService", "SettleJobs", plain)
        assert (list(answer.accepted), list(answer.leases)) == ([True, True], [])
    finished = await wire_server.store.get(lease.job.id)
    assert finished is not None
    assert finished.status is JobStatus.COMPLETED


@pytest.mark.parametrize("wire", WIRES, ids=[w.name for w in WIRES])
async def test_a_bad_claim_is_refused_and_the_batch_not_settled(
    wire_server: WireServer, wire: Wire
) -> None:
    async with wire_client(wire_server.url, wire) as client:
        lease = await leased(client, 1)
        request = wpb.SettleJobsRequest(
            outcomes=[done(lease)], claim=wpb.ClaimJobsRequest(types=["bad type"])
        )
        with pytest.raises(ConnectError) as caught:
            await client.unary("WorkerService", "SettleJobs", request)
    assert caught.value.code == Code.INVALID_ARGUMENT
    assert "types[0]" in caught.value.message
    job = await wire_server.store.get(lease.job.id)
    assert job is not None
    assert job.status is JobStatus.RUNNING

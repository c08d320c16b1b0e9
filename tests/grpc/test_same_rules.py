"""The direct path and the server refuse the same claims, renewals and outcomes, the same way.

Both go through the domain's ``LeaseService``: a worker next to the store
(``StoreSource``) and a remote one (``WorkerService``) meet one set of rules,
and the server's INVALID_ARGUMENT carries the very message the direct path
raises.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import grpc
import pytest

from jobqueue.domain import InvalidJob, Outcome, OutcomeKind
from jobqueue.grpc import RunningServer
from jobqueue.memory import MemoryJobStore
from jobqueue.worker import StoreSource
from mpataki.jobqueue.v1 import jobqueue_pb2 as pb
from mpataki.jobqueue.v1 import jobqueue_pb2_grpc, worker_pb2_grpc
from mpataki.jobqueue.v1 import worker_pb2 as wpb
from tests.grpc.conftest import TEST_LIMITS, start_api


class Both:
    def __init__(self, store: MemoryJobStore, server: RunningServer) -> None:
        self.store = store
        self.direct = StoreSource(store, limits=TEST_LIMITS)
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
        self.jobs: jobqueue_pb2_grpc.JobServiceAsyncStub = jobqueue_pb2_grpc.JobServiceStub(
            self.channel
        )
        self.workers: worker_pb2_grpc.WorkerServiceAsyncStub = worker_pb2_grpc.WorkerServiceStub(
            self.channel
        )


@pytest.fixture
async def both() -> AsyncIterator[Both]:
    store = MemoryJobStore()
    server = await start_api(store)
    paths = Both(store, server)
    try:
        yield paths
    finally:
        await paths.channel.close(None)
        await store.close()
        await server.stop(None)


async def server_refusal(call: object) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    return caught.value.details() or ""


CLAIMS = [
    pytest.param(["ok", "bad type"], 1, 0, 0, "types[1]", id="bad type"),
    pytest.param([], 1, 0, 0, "types", id="no type"),
    pytest.param(["ok"], -1, 0, 0, "max_jobs", id="negative count"),
    pytest.param(["ok"], 1, 5, 0, "lease_ms", id="lease too short"),
    pytest.param(["ok"], 1, 10**10, 0, "lease_ms", id="lease too long"),
    pytest.param(["ok"], 1, 0, -1, "wait_ms", id="negative wait"),
]


@pytest.mark.parametrize(("types", "count", "lease_ms", "wait_ms", "field"), CLAIMS)
async def test_a_bad_claim_is_refused_alike(
    both: Both, types: list[str], count: int, lease_ms: int, wait_ms: int, field: str
) -> None:
    with pytest.raises(InvalidJob) as direct:
        await both.direct.claim(types, limit=count, lease_ms=lease_ms, wait_ms=wait_ms)
    assert direct.value.field == field
    details = await server_refusal(
        both.workers.ClaimJobs(
            wpb.ClaimJobsRequest(types=types, max_jobs=count, lease_ms=lease_ms, wait_ms=wait_ms)
        )
    )
    assert details == str(direct.value)


async def test_a_bad_renewal_is_refused_alike(both: Both) -> None:
    with pytest.raises(InvalidJob) as direct:
        await both.direct.renew([("nope", "t")], lease_ms=1_000)
    details = await server_refusal(
        both.workers.RenewLeases(
            wpb.RenewLeasesRequest(leases=[wpb.LeaseRef(job_id="nope", token="t")], lease_ms=1_000)
        )
    )
    assert (direct.value.field, details) == ("leases[0].job_id", str(direct.value))


async def test_a_malformed_outcome_is_refused_alone_on_both_paths(both: Both) -> None:
    for _ in range(2):
        await both.jobs.EnqueueJob(pb.EnqueueJobRequest(type="ok"))
    (direct_lease,) = await both.direct.claim(["ok"], limit=1, lease_ms=10_000, wait_ms=0)
    (remote_lease,) = (
        await both.workers.ClaimJobs(wpb.ClaimJobsRequest(types=["ok"], lease_ms=10_000))
    ).leases
    stray = str(uuid.uuid4())
    direct = await both.direct.settle(
        [
            Outcome(job_id="nope", token="t", kind=OutcomeKind.COMPLETE),
            Outcome(job_id=stray, token="", kind=OutcomeKind.COMPLETE),
            Outcome(
                job_id=direct_lease.job.id, token=direct_lease.token, kind=OutcomeKind.COMPLETE
            ),
        ]
    )
    remote = await both.workers.SettleJobs(
        wpb.SettleJobsRequest(
            outcomes=[
                wpb.Outcome(job_id="nope", token="t", kind=wpb.OUTCOME_KIND_COMPLETE),
                wpb.Outcome(job_id=stray, token="", kind=wpb.OUTCOME_KIND_COMPLETE),
                wpb.Outcome(
                    job_id=remote_lease.job.id,
                    token=remote_lease.token,
                    kind=wpb.OUTCOME_KIND_COMPLETE,
                ),
            ]
        )
    )
    assert direct == list(remote.accepted) == [False, False, True]


async def test_a_batch_over_the_limit_is_refused_alike(both: Both) -> None:
    size = TEST_LIMITS.max_batch_size + 1
    stray = str(uuid.uuid4())
    with pytest.raises(InvalidJob) as direct:
        await both.direct.settle([Outcome(job_id=stray, token="t", kind=OutcomeKind.FAIL)] * size)
    details = await server_refusal(
        both.workers.SettleJobs(
            wpb.SettleJobsRequest(
                outcomes=[wpb.Outcome(job_id=stray, token="t", kind=wpb.OUTCOME_KIND_FAIL)] * size
            )
        )
    )
    assert (direct.value.field, details) == ("outcomes", str(direct.value))

"""``jobqueue-server`` on a Redis Cluster over 8 shards, driven through the wire (issue 12)."""

from __future__ import annotations

import grpc
import pytest

from jobqueue.redis._shards import shard_of_id, shard_of_type
from mpataki.jobqueue.v1 import jobqueue_pb2 as pb
from mpataki.jobqueue.v1 import jobqueue_pb2_grpc, worker_pb2, worker_pb2_grpc
from tests._redis_groups import ClusterProcesses
from tests.server._process import ServerProcess

pytestmark = [pytest.mark.redis, pytest.mark.integration]

SHARDS = 8


async def test_the_server_enqueues_gets_cancels_and_hands_out_jobs_of_every_shard(
    cluster: ClusterProcesses,
) -> None:
    server = ServerProcess(
        env={
            "JOBQUEUE_REDIS_URL": cluster.url,
            "JOBQUEUE_REDIS_SHARDS": str(SHARDS),
            "JOBQUEUE_KEY_PREFIX": "jq-wire",
        }
    )
    server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            jobs = jobqueue_pb2_grpc.JobServiceStub(channel)
            workers = worker_pb2_grpc.WorkerServiceStub(channel)
            types = [f"wire{i}" for i in range(6)]
            assert len({shard_of_type(t, SHARDS) for t in types}) > 2
            made = [(await jobs.EnqueueJob(pb.EnqueueJobRequest(type=t))).job for t in types]
            for job in made:  # each id names its type's shard, and routes GetJob alone
                assert shard_of_id(job.id, SHARDS) == shard_of_type(job.type, SHARDS)
                assert (await jobs.GetJob(pb.GetJobRequest(id=job.id))).job.id == job.id
            batch = await jobs.EnqueueJobs(
                pb.EnqueueJobsRequest(jobs=[pb.EnqueueJobRequest(type=t) for t in types])
            )
            assert [job.type for job in batch.jobs] == types
            cancelled = (await jobs.CancelJob(pb.CancelJobRequest(id=made[0].id))).job
            assert cancelled.status == pb.JOB_STATUS_CANCELLED
            with pytest.raises(grpc.aio.AioRpcError) as finished:
                await jobs.CancelJob(pb.CancelJobRequest(id=made[0].id))
            assert finished.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            missing = made[1].id[:-4] + f"{(shard_of_id(made[1].id, SHARDS) + 1) % SHARDS:04x}"
            with pytest.raises(grpc.aio.AioRpcError) as not_found:
                await jobs.GetJob(pb.GetJobRequest(id=missing))
            assert not_found.value.code() == grpc.StatusCode.NOT_FOUND

            claimed = await workers.ClaimJobs(
                worker_pb2.ClaimJobsRequest(types=types, max_jobs=100, lease_ms=30_000)
            )
            expected = {job.id for job in made[1:]} | {job.id for job in batch.jobs}
            assert {lease.job.id for lease in claimed.leases} == expected
            settled = await workers.SettleJobs(
                worker_pb2.SettleJobsRequest(
                    outcomes=[
                        worker_pb2.Outcome(
                            job_id=lease.job.id,
                            token=lease.token,
                            kind=worker_pb2.OUTCOME_KIND_COMPLETE,
                        )
                        for lease in claimed.leases
                    ]
                )
            )
            assert list(settled.accepted) == [True] * len(expected)
            stats = await jobs.GetQueueStats(pb.GetQueueStatsRequest())
            assert sum(row.completed for row in stats.types) == len(expected)
    finally:
        code, output = server.stop()
    assert code == 0, output
    # The start-up check of every master's persistence ran (the nodes keep an AOF).
    assert "Traceback" not in output
    assert "could not check Redis" not in output

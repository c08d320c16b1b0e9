"""Scenario 9: claims whose replies never reach a worker, on jobs allowed one attempt.

Every job has ``max_attempts=1``, so an attempt used up by a lease that no
worker ever received fails a job that never ran. Two direct ledger workers
and one gRPC ledger worker drain bursts of jobs; around each burst:

- the test's own claims, sent before the burst and waiting for it, are
  cancelled at random moments after the burst is sent: direct store claims
  (``RedisJobStore.claim`` cancelled in flight) and ``ClaimJobs`` calls to the
  server cancelled by the client; those that answer before their cancel have
  their leases dropped, as a worker that dies with the reply would;
- one worker is stopped while it claims, by turns with SIGTERM (its stop must
  not give up a claim already sent) and SIGKILL, and replaced;
- all along, every normal Redis connection is cut (``CLIENT KILL``) every
  150 ms, mid-claim as often as not.

No acknowledged job may stay unfinished or vanish, and no job may end FAILED
without a run in the ledger. Runs of one job must not overlap.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from pathlib import Path

import grpc
import pytest
import redis

from jobqueue.domain import Lease
from jobqueue.redis import RedisJobStore, RedisStoreSettings
from mpataki.jobqueue.v1 import jobqueue_pb2 as pb
from mpataki.jobqueue.v1 import jobqueue_pb2_grpc as pb_grpc
from mpataki.jobqueue.v1 import worker_pb2 as wpb
from mpataki.jobqueue.v1 import worker_pb2_grpc as wpb_grpc
from tests._redis_server import RedisProcess
from tests.faults._ledger import read_ledger, summarize, wait_terminal
from tests.faults._processes import ServerProc, WorkerPool
from tests.faults._producers import RETRYABLE
from tests.faults._scenario import FAST_CHANNEL_OPTIONS, report, scale
from tests.faults._timeline import overlapping_runs

pytestmark = [pytest.mark.faults, pytest.mark.timeout(scale(150, 900))]

ROUNDS = scale(8, 80)
BURST = scale(60, 100)
ROUND_GAP_S = 1.2
LEASE_MS = 1_000
CUT_EVERY_S = 0.15
DIRECT_LOST_CLAIMS = 2
GRPC_LOST_CLAIMS = 1
CANCEL_WITHIN_S = 0.015
"""A lost claim is cancelled at a random moment this long after the burst is sent."""


async def enqueue_burst(stub: pb_grpc.JobServiceAsyncStub, key: str) -> list[str]:
    """BURST jobs in one batch (landing at once), retried with its key until acknowledged."""
    request = pb.EnqueueJobsRequest(
        jobs=[pb.EnqueueJobRequest(type="work", max_attempts=1) for _ in range(BURST)],
        idempotency_key=key,
    )
    give_up_at = time.monotonic() + 30
    while True:
        try:
            response = await stub.EnqueueJobs(request, timeout=5)
        except grpc.aio.AioRpcError as error:
            if error.code() not in RETRYABLE or time.monotonic() > give_up_at:
                raise
            await asyncio.sleep(0.05)
            continue
        return [job.id for job in response.jobs]


class LostClaims:
    """Claims sent ahead of a burst and cancelled after it; what they did, counted."""

    def __init__(self, store: RedisJobStore, stub: wpb_grpc.WorkerServiceAsyncStub) -> None:
        self.store = store
        self.stub = stub
        self.counts: Counter[str] = Counter()

    async def direct(self, sent: asyncio.Event, cancel_after_s: float) -> None:
        task = asyncio.create_task(
            self.store.claim(["work"], limit=1, lease_ms=LEASE_MS, wait_ms=3_000)
        )
        await sent.wait()
        await asyncio.sleep(cancel_after_s)
        if task.done():
            self.counts["direct answered, leases dropped"] += len(self._leases(task))
            return
        task.cancel()
        try:
            leases = await task
        except asyncio.CancelledError:
            self.counts["direct cancelled in flight"] += 1
        except Exception as error:  # a cut connection: the store's error
            self.counts[f"direct failed: {type(error).__name__}"] += 1
        else:
            self.counts["direct answered, leases dropped"] += len(leases)

    async def over_grpc(self, sent: asyncio.Event, cancel_after_s: float) -> None:
        call = self.stub.ClaimJobs(
            wpb.ClaimJobsRequest(types=["work"], max_jobs=1, lease_ms=LEASE_MS, wait_ms=3_000),
            timeout=10,
        )
        await sent.wait()
        await asyncio.sleep(cancel_after_s)
        if call.done():
            try:
                response = await call
            except grpc.aio.AioRpcError as error:
                self.counts[f"grpc failed: {error.code().name}"] += 1
            else:
                self.counts["grpc answered, leases dropped"] += len(response.leases)
            return
        call.cancel()
        try:
            response = await call
        except asyncio.CancelledError:
            self.counts["grpc cancelled in flight"] += 1
        except grpc.aio.AioRpcError as error:
            self.counts[f"grpc failed: {error.code().name}"] += 1
        else:
            self.counts["grpc answered, leases dropped"] += len(response.leases)

    def _leases(self, task: asyncio.Task[list[Lease]]) -> list[Lease]:
        if task.cancelled() or task.exception() is not None:
            self.counts[f"direct failed: {type(task.exception()).__name__}"] += 1
            return []
        return task.result()


async def cut_connections(
    client: redis.Redis, stop: asyncio.Event, counts: Counter[str], limit_s: float
) -> None:
    deadline = time.monotonic() + limit_s
    while not stop.is_set() and time.monotonic() < deadline:
        # SKIPME yes (the default): this connection survives its own command.
        counts["connections cut"] += int(client.client_kill_filter(_type="normal"))
        counts["cut rounds"] += 1
        await asyncio.sleep(CUT_EVERY_S)


async def test_no_job_fails_without_running_when_claim_replies_are_lost(
    redis_plain: RedisProcess, prefix: str, tmp_path: Path
) -> None:
    server = ServerProc(redis_url=redis_plain.url, prefix=prefix, log_dir=tmp_path)
    common = ["--concurrency", "4", "--lease-ms", str(LEASE_MS), "--work-ms", "10"]
    direct = WorkerPool(
        tmp_path, ["--redis-url", redis_plain.url, "--prefix", prefix, *common], name="direct"
    )
    over_grpc = WorkerPool(tmp_path, ["--server", server.target, *common], name="grpc")
    client = redis.Redis.from_url(redis_plain.url)
    store = RedisJobStore(RedisStoreSettings(url=redis_plain.url, key_prefix=prefix))
    rng = random.Random(5)
    counts: Counter[str] = Counter()
    stop_cutting = asyncio.Event()
    acked: list[str] = []
    try:
        server.start()
        direct.spawn_many(2)
        over_grpc.spawn_many(1)
        async with grpc.aio.insecure_channel(server.target, options=FAST_CHANNEL_OPTIONS) as ch:
            jobs_stub = pb_grpc.JobServiceStub(ch)  # an aio stub on an aio channel
            lost = LostClaims(store, wpb_grpc.WorkerServiceStub(ch))
            cutting = asyncio.create_task(
                cut_connections(client, stop_cutting, counts, ROUNDS * ROUND_GAP_S * 4 + 30)
            )
            started = time.monotonic()
            for number in range(ROUNDS):
                sent = asyncio.Event()
                waiting = [
                    asyncio.create_task(lost.over_grpc(sent, rng.uniform(0, CANCEL_WITHIN_S)))
                    for _ in range(GRPC_LOST_CLAIMS)
                ] + [
                    asyncio.create_task(lost.direct(sent, rng.uniform(0, CANCEL_WITHIN_S)))
                    for _ in range(DIRECT_LOST_CLAIMS)
                ]
                await asyncio.sleep(0.05)  # the claims are waiting for work now
                burst = asyncio.create_task(enqueue_burst(jobs_stub, f"{prefix}-{number}"))
                sent.set()
                # A worker stopped while it claims from this burst, then replaced.
                pool = direct if number % 3 != 2 else over_grpc
                victim = rng.choice(pool.alive)
                await asyncio.sleep(rng.uniform(0, CANCEL_WITHIN_S))
                if number % 2:
                    pool.kill(victim)
                    counts["workers SIGKILLed while claiming"] += 1
                else:
                    code = await asyncio.to_thread(pool.terminate, victim)
                    counts[f"workers SIGTERMed while claiming (exit {code})"] += 1
                pool.spawn()
                acked += await asyncio.wait_for(burst, 60)
                await asyncio.wait_for(asyncio.gather(*waiting), 30)
                await asyncio.sleep(ROUND_GAP_S)
            direct.wait_ready()
            over_grpc.wait_ready()
            stop_cutting.set()
            await cutting
            counts.update(lost.counts)

        jobs = wait_terminal(client, prefix, acked, timeout_s=60)
        drained_s = time.monotonic() - started
        direct.stop_all()
        over_grpc.stop_all()
        runs = read_ledger(tmp_path)
        overlaps = overlapping_runs(runs, {**direct.exited, **over_grpc.exited})
        unfinished = [j for j, job in jobs.items() if job is None or job.status < 3]
        failed = [j for j, job in jobs.items() if job is not None and job.status == 4]
        failed_unrun = [j for j in failed if not runs.get(j)]
        completed_unrun = [
            j for j, job in jobs.items() if job is not None and job.status == 3 and not runs.get(j)
        ]
        errors = Counter(
            (jobs[j].error or b"").decode(errors="replace")[:60]  # type: ignore[union-attr]
            for j in failed
        )
        report(
            "lost-replies",
            enqueued=len(acked),
            statuses=summarize(jobs),
            lost=len(unfinished),
            failed_without_run=len(failed_unrun),
            failed_after_running=len(failed) - len(failed_unrun),
            failed_errors=dict(errors),
            overlapping_runs=len(overlaps),
            ran_more_than_once=sum(1 for job_runs in runs.values() if len(job_runs) > 1),
            faults=dict(counts),
            drained_s=round(drained_s, 1),
        )
        assert len(acked) == ROUNDS * BURST
        # The faults did reach claims: some leases went to nobody.
        assert counts["connections cut"] > counts["cut rounds"]
        assert not unfinished, (len(unfinished), summarize(jobs))
        assert not failed_unrun, [(jobs[j], errors) for j in failed_unrun[:3]]
        assert not completed_unrun, completed_unrun[:3]
        assert not overlaps, overlaps[:3]
    finally:
        stop_cutting.set()
        direct.stop_all()
        over_grpc.stop_all()
        server.stop()
        await store.close()
        client.close()

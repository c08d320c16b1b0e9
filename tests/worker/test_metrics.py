"""The worker's own metrics: into a user's registry, or served on a port of its own."""

from __future__ import annotations

import asyncio
import urllib.request

import pytest
from prometheus_client import CollectorRegistry

from jobqueue.domain import JobService, JobStatus, SystemClock, UuidV7Generator
from jobqueue.memory import MemoryJobStore
from jobqueue.worker import JobContext, PermanentError, Worker
from tests._redis_server import free_port
from tests.worker._waits import finished
from tests.worker.conftest import FAST_SETTINGS, Harness, start_test_server
from tests.worker.test_command import _reap, _start, _stop


def track(harness: Harness, worker: Worker) -> Worker:
    harness.workers.append(worker)  # stopped by the fixture
    return worker


async def test_runs_outcomes_and_durations_go_into_the_users_registry(harness: Harness) -> None:
    registry = CollectorRegistry()
    worker = track(
        harness, Worker(harness.make_source(), settings=FAST_SETTINGS, metrics_registry=registry)
    )
    tries: dict[str, int] = {}

    @worker.handler("flaky", max_attempts=3)
    async def flaky(job: JobContext) -> None:
        tries[job.id] = tries.get(job.id, 0) + 1
        if tries[job.id] == 1:
            raise RuntimeError("once")

    @worker.handler("broken")
    async def broken(job: JobContext) -> None:
        raise PermanentError("never")

    await worker.start()
    flaky_jobs = [await harness.enqueue("flaky") for _ in range(3)]
    broken_job = await harness.enqueue("broken")
    for job in flaky_jobs:
        assert (await harness.wait_status(job.id)).status is JobStatus.COMPLETED
    assert (await harness.wait_status(broken_job.id)).status is JobStatus.FAILED

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("jobqueue_worker_runs_total", type="flaky", outcome="completed") == 3
    assert value("jobqueue_worker_runs_total", type="flaky", outcome="retried") == 3
    assert value("jobqueue_worker_runs_total", type="broken", outcome="failed") == 1
    count = "jobqueue_worker_handler_duration_seconds_count"
    assert value(count, type="flaky", outcome="retried") == 3
    assert value("jobqueue_worker_queue_wait_seconds_count", type="flaky") == 6
    # End to end: once per job, at its last run only.
    assert value("jobqueue_worker_end_to_end_seconds_count", type="flaky") == 3
    assert value("jobqueue_worker_end_to_end_seconds_count", type="broken") == 1
    assert value("jobqueue_worker_concurrency") == FAST_SETTINGS.concurrency
    # A slot frees once the worker has the settle's answer, which comes after
    # the store recorded the outcome this test waited for: give it that moment
    # (bounded), as a CI run through the server once read 3 busy in between.
    for _ in range(500):
        if value("jobqueue_worker_busy_slots") == 0:
            break
        await asyncio.sleep(0.01)
    assert value("jobqueue_worker_busy_slots") == 0


async def test_a_worker_serves_its_metrics_on_its_own_port(harness: Harness) -> None:
    worker = track(harness, Worker(harness.make_source(), settings=FAST_SETTINGS, metrics_port=0))
    release = asyncio.Event()

    @worker.handler("slow")
    async def slow(job: JobContext) -> None:
        await release.wait()

    await worker.start()
    assert worker.metrics is not None
    port = worker.metrics.port
    assert port
    job = await harness.enqueue("slow")
    await harness.wait_status(job.id, JobStatus.RUNNING)

    def scrape() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            text: str = answer.read().decode()
            return text

    # RUNNING is the store's word, stored by the claim before its reply reaches
    # the worker, whose slot is busy from then on: scrape until it is (bounded).
    lines: list[str] = []
    for _ in range(500):
        lines = (await asyncio.to_thread(scrape)).splitlines()
        if "jobqueue_worker_busy_slots 1.0" in lines:
            break
        await asyncio.sleep(0.01)
    assert "jobqueue_worker_busy_slots 1.0" in lines
    release.set()
    await harness.wait_status(job.id)
    await worker.stop()
    assert worker.metrics.port is None


async def test_without_a_registry_or_port_no_metrics_are_kept(harness: Harness) -> None:
    worker = harness.worker()
    worker.register("noop", lambda job: None)
    await worker.start()
    assert worker.metrics is None


@pytest.mark.integration
async def test_the_worker_command_serves_metrics_on_metrics_port() -> None:
    store = MemoryJobStore()
    server = await start_test_server(store)
    port = free_port()
    process = _start("--server", f"127.0.0.1:{server.port}", "--metrics-port", str(port))
    try:
        service = JobService(store, clock=SystemClock(), ids=UuidV7Generator())
        job = await service.enqueue("echo", b"hi")
        assert (await finished(store, job.id)).status is JobStatus.COMPLETED

        def scrape() -> str:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
                text: str = answer.read().decode()
                return text

        lines = (await asyncio.to_thread(scrape)).splitlines()
        assert 'jobqueue_worker_runs_total{outcome="completed",type="echo"} 1.0' in lines
        records = await _stop(process)
    finally:
        _reap(process)
        await server.stop(grace_s=None)
    assert any(r["message"] == f"serving worker metrics on 127.0.0.1:{port}" for r in records)

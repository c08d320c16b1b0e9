"""The composition root: store selection, overrides, the App's lifetime and its lease sweep."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import grpc
import pytest
from click.testing import CliRunner

import jobqueue_server
from jobqueue.domain import JobService
from jobqueue.memory import MemoryJobStore
from jobqueue.redis import RedisJobStore
from jobqueue_server import App, Container, ServerSettings
from jobqueue_server.__main__ import cli
from mpataki.jobqueue.v1 import jobqueue_pb2 as pb
from mpataki.jobqueue.v1 import jobqueue_pb2_grpc, worker_pb2, worker_pb2_grpc


class RecordingStore(MemoryJobStore):
    """A memory store that remembers being closed."""

    closed = False

    async def close(self) -> None:
        self.closed = True
        await super().close()


def container_for(**settings: object) -> Container:
    container = Container()
    container.settings.override(ServerSettings(host="127.0.0.1", port=0, **settings))  # type: ignore[arg-type]
    return container


def test_without_redis_the_store_is_in_memory_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        store = container_for().store()
    assert isinstance(store, MemoryJobStore)
    assert "nothing survives a restart" in caplog.text


async def test_a_redis_url_selects_the_redis_store() -> None:
    container = container_for(redis_url="redis://127.0.0.1:1/0", key_prefix="jqx")
    store = container.store()
    assert isinstance(store, RedisJobStore)
    await store.close()


def test_the_seeds_redis_addr_becomes_a_url() -> None:
    settings = ServerSettings(REDIS_ADDR="localhost:6379")  # type: ignore[call-arg]
    assert settings.effective_redis_url == "redis://localhost:6379/0"
    assert settings.store_kind == "redis"
    assert ServerSettings(redis_url="redis://h:1/2", REDIS_ADDR="x:1").effective_redis_url == (  # type: ignore[call-arg]
        "redis://h:1/2"
    )


def test_settings_defaults_and_addresses() -> None:
    settings = ServerSettings()
    assert (settings.host, settings.port, settings.key_prefix) == ("0.0.0.0", 8080, "jq")
    assert settings.retention_ms == 86_400_000
    assert settings.max_payload_bytes == 1024 * 1024
    assert ServerSettings(host="::1", port=9).address == "[::1]:9"
    with pytest.raises(ValueError, match="log level"):
        ServerSettings(log_level="chatty")


def test_the_payload_limit_reaches_the_domain() -> None:
    service = container_for(max_payload_bytes=10).job_service()
    assert isinstance(service, JobService)
    assert service.limits.max_payload_bytes == 10


@pytest.fixture
async def app_over_fake() -> AsyncIterator[tuple[App, RecordingStore]]:
    store = RecordingStore()
    container = container_for(sweep_interval_s=0.05, shutdown_grace_s=1)
    with container.store.override(store):
        app = App(container)
        await app.start()
        try:
            yield app, store
        finally:
            await app.stop()


async def test_the_overridden_store_serves_the_api_and_is_closed_on_stop(
    app_over_fake: tuple[App, RecordingStore],
) -> None:
    app, store = app_over_fake
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        jobs = jobqueue_pb2_grpc.JobServiceStub(channel)
        job = (await jobs.EnqueueJob(pb.EnqueueJobRequest(type="t"))).job
    assert await store.get(job.id) is not None
    await app.stop()
    assert store.closed


async def test_the_server_sweeps_expired_leases(app_over_fake: tuple[App, RecordingStore]) -> None:
    app, _ = app_over_fake
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        jobs = jobqueue_pb2_grpc.JobServiceStub(channel)
        workers = worker_pb2_grpc.WorkerServiceStub(channel)
        job = (await jobs.EnqueueJob(pb.EnqueueJobRequest(type="t"))).job
        claimed = await workers.ClaimJobs(worker_pb2.ClaimJobsRequest(types=["t"], lease_ms=200))
        assert [lease.job.id for lease in claimed.leases] == [job.id]
        # The worker confirms its lease (so the attempt counts), then "dies":
        # nobody renews again. The server's sweep hands the job back.
        (lease,) = claimed.leases
        ref = worker_pb2.LeaseRef(job_id=job.id, token=lease.token)
        renewed = await workers.RenewLeases(
            worker_pb2.RenewLeasesRequest(leases=[ref], lease_ms=200)
        )
        assert list(renewed.states) == [worker_pb2.LEASE_STATE_ACTIVE]
        for _ in range(100):
            current = (await jobs.GetJob(pb.GetJobRequest(id=job.id))).job
            if current.status == pb.JOB_STATUS_PENDING:
                break
            await asyncio.sleep(0.05)
        assert current.status == pb.JOB_STATUS_PENDING
        assert current.attempts == 1


async def test_the_sweep_gives_back_the_attempt_of_a_lease_never_confirmed(
    app_over_fake: tuple[App, RecordingStore],
) -> None:
    """A claim whose reply never reached a worker costs the job nothing (issue 11, item 2)."""
    app, _ = app_over_fake
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        jobs = jobqueue_pb2_grpc.JobServiceStub(channel)
        workers = worker_pb2_grpc.WorkerServiceStub(channel)
        request = pb.EnqueueJobRequest(type="t", max_attempts=1)
        job = (await jobs.EnqueueJob(request)).job
        claimed = await workers.ClaimJobs(worker_pb2.ClaimJobsRequest(types=["t"], lease_ms=100))
        assert [lease.job.id for lease in claimed.leases] == [job.id]
        for _ in range(100):
            current = (await jobs.GetJob(pb.GetJobRequest(id=job.id))).job
            if current.status != pb.JOB_STATUS_RUNNING:
                break
            await asyncio.sleep(0.05)
        assert current.status == pb.JOB_STATUS_PENDING
        assert current.attempts == 0


def test_durations_carry_their_unit_and_the_old_names_still_work(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = ServerSettings(retention_ms=5_000, shutdown_grace_s=2.5, sweep_interval_s=0.5)
    assert (settings.retention_ms, settings.shutdown_grace_s, settings.sweep_interval_s) == (
        5_000,
        2.5,
        0.5,
    )
    with pytest.warns(DeprecationWarning, match="retention_ms"):
        old = ServerSettings(retention_seconds=7)  # type: ignore[call-arg]
    assert old.retention_ms == 7_000
    with pytest.warns(DeprecationWarning, match="shutdown_grace_s"):
        assert old.shutdown_grace_seconds == 10.0
    with pytest.warns(DeprecationWarning, match="sweep_interval_s"):
        assert old.sweep_interval_seconds == 1.0
    with pytest.warns(DeprecationWarning, match="retention_ms"):
        assert old.retention_seconds == 7
    # Deployments keep their environment: the old variables work, in their old unit.
    monkeypatch.setenv("JOBQUEUE_RETENTION_SECONDS", "60")
    monkeypatch.setenv("JOBQUEUE_SHUTDOWN_GRACE_SECONDS", "3")
    monkeypatch.setenv("JOBQUEUE_SWEEP_INTERVAL_SECONDS", "0.25")
    from_env = ServerSettings()
    assert (from_env.retention_ms, from_env.shutdown_grace_s, from_env.sweep_interval_s) == (
        60_000,
        3.0,
        0.25,
    )
    monkeypatch.setenv("JOBQUEUE_RETENTION_MS", "1500")
    assert ServerSettings().retention_ms == 1_500
    monkeypatch.setenv("JOBQUEUE_RETENTION_SECONDS", "soon")
    monkeypatch.delenv("JOBQUEUE_RETENTION_MS")
    with pytest.raises(ValueError, match="retention_ms"):
        ServerSettings()


def test_the_public_face_is_pinned() -> None:
    assert jobqueue_server.__all__ == ["App", "Container", "ServerSettings"]
    for name in jobqueue_server.__all__:
        assert hasattr(jobqueue_server, name)


def test_the_cli_documents_every_setting() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for flag in ("--port", "--host", "--redis-url", "--key-prefix", "--retention-ms"):
        assert flag in result.output
    # Renamed flags keep working, unlisted.
    assert "--retention-seconds" not in result.output
    assert "JOBQUEUE_PORT" in result.output


def test_the_cli_rejects_a_bad_flag_value() -> None:
    result = CliRunner().invoke(cli, ["--log-level", "chatty"])
    assert result.exit_code != 0
    assert "log level" in result.output


async def test_a_call_in_flight_finishes_during_the_grace_period() -> None:
    container = container_for(shutdown_grace_s=5)
    with container.store.override(RecordingStore()):
        app = App(container)
        await app.start()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
            workers = worker_pb2_grpc.WorkerServiceStub(channel)
            # A claim that waits 500 ms on the server is in flight when the stop begins.
            claim = asyncio.ensure_future(
                workers.ClaimJobs(worker_pb2.ClaimJobsRequest(types=["t"], wait_ms=500))
            )
            await asyncio.sleep(0.1)
            await app.stop()
            response = await claim
    assert list(response.leases) == []

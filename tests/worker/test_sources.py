"""A worker built from a Redis URL or a server address: one import, sources it owns.

What it opens it closes at stop; and it loads only what its path needs, so a
worker on the direct Redis path never imports grpc.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest
import redis.asyncio as aioredis

from jobqueue.domain import JobService, JobStatus, SystemClock, UuidV7Generator
from jobqueue.grpc import BearerTokenAuth, ServerTls
from jobqueue.memory import MemoryJobStore
from jobqueue.redis import RedisJobStore, RedisStoreSettings
from jobqueue.worker import JobContext, Worker
from tests._redis_server import ClusterProcesses, SentinelGroup
from tests.grpc.conftest import start_api
from tests.security._pki import Pki, make_pki

from ._waits import finished


async def _echo(job: JobContext) -> bytes:
    return job.payload


async def _clients(admin: aioredis.Redis) -> int:
    return len(await admin.client_list())


@pytest.mark.redis
async def test_a_worker_from_a_redis_url_runs_jobs_and_closes_its_store(
    redis_url: str, key_prefix: str
) -> None:
    prefix = key_prefix.rstrip(":")
    producer = RedisJobStore(RedisStoreSettings(url=redis_url, key_prefix=prefix))
    service = JobService(producer, clock=SystemClock(), ids=UuidV7Generator())
    admin = aioredis.Redis.from_url(redis_url)
    try:
        await service.enqueue("echo", b"warm-up")  # the producer's connections are open now
        before = await _clients(admin)
        worker = Worker(redis_url=redis_url, key_prefix=prefix, concurrency=2)
        worker.register("echo", _echo)
        await worker.start()
        job = await service.enqueue("echo", b"hello")
        done = await finished(producer, job.id)
        assert (done.status, done.result) == (JobStatus.COMPLETED, b"hello")
        assert await _clients(admin) > before  # the worker's own store is connected
        await worker.stop(grace_s=1)
        async with asyncio.timeout(5):
            while await _clients(admin) > before:  # noqa: ASYNC110 - Redis's view
                await asyncio.sleep(0.01)
    finally:
        await admin.aclose()
        await producer.close()


@pytest.mark.parametrize(("token", "completes"), [("worker-token-0123456789", True), (None, False)])
async def test_a_worker_from_a_server_address_sends_its_token(
    token: str | None, completes: bool
) -> None:
    store = MemoryJobStore()
    server = await start_api(store, interceptors=[BearerTokenAuth(["worker-token-0123456789"])])
    service = JobService(store, clock=SystemClock(), ids=UuidV7Generator())
    worker = Worker(server=f"127.0.0.1:{server.port}", auth_token=token, lease_ms=2_000)
    worker.register("echo", _echo)
    try:
        job = await service.enqueue("echo", b"via server")
        await worker.start()
        if completes:
            done = await finished(store, job.id)
            assert done.result == b"via server"
        else:
            await asyncio.sleep(0.3)  # several refused claims
            pending = await store.get(job.id)
            assert pending is not None
            assert pending.status is JobStatus.PENDING
    finally:
        await worker.stop(grace_s=0)
        await server.stop(None)
        await store.close()


_PROBE = """
import asyncio, json, sys
from jobqueue.worker import Worker

async def handler(job):
    return None

async def main():
    worker = Worker({where})
    worker.register("probe", handler)
    await worker.start()
    await asyncio.sleep(0.2)
    await worker.stop(grace_s=0)

asyncio.run(main())
print(json.dumps(sorted(
    name for name in sys.modules
    if name.split(".")[0] == "grpc" or name.startswith(("jobqueue.redis", "jobqueue.client"))
)))
"""


def _loaded(where: str) -> list[str]:
    script = _PROBE.format(where=where)
    out = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True, timeout=60
    )
    loaded: list[str] = json.loads(out.stdout.splitlines()[-1])
    return loaded


@pytest.mark.redis
def test_a_worker_on_the_redis_path_never_loads_grpc(redis_url: str, key_prefix: str) -> None:
    loaded = _loaded(f"redis_url={redis_url!r}, key_prefix={key_prefix.rstrip(':')!r}")
    assert "jobqueue.redis" in loaded
    assert not [name for name in loaded if name.split(".")[0] == "grpc"]
    assert not [name for name in loaded if name.startswith("jobqueue.client")]


def test_a_worker_on_the_server_path_never_loads_the_redis_adapter() -> None:
    loaded = _loaded("server='127.0.0.1:9'")  # nothing listens: claims just fail
    assert "grpc" in loaded
    assert not [name for name in loaded if name.startswith("jobqueue.redis")]


@pytest.mark.redis
@pytest.mark.parametrize("topology", ["sentinel", "cluster"])
async def test_a_worker_takes_the_sentinel_and_cluster_url_forms(topology: str) -> None:
    if os.environ.get("JOBQUEUE_SKIP_REDIS_TESTS") == "1":
        pytest.skip("JOBQUEUE_SKIP_REDIS_TESTS=1")
    servers: SentinelGroup | ClusterProcesses = (
        SentinelGroup(replicas=1) if topology == "sentinel" else ClusterProcesses()
    )
    try:
        servers.start()
        url = servers.url() if isinstance(servers, SentinelGroup) else servers.url
        assert url.startswith(f"redis+{topology}://")
        producer = RedisJobStore(RedisStoreSettings(url=url))
        service = JobService(producer, clock=SystemClock(), ids=UuidV7Generator())
        worker = Worker(redis_url=url, concurrency=2)
        worker.register("echo", _echo)
        try:
            await worker.start()
            job = await service.enqueue("echo", topology.encode())
            done = await finished(producer, job.id)
        finally:
            await worker.stop(grace_s=1)
            await producer.close()
        assert (done.status, done.result) == (JobStatus.COMPLETED, topology.encode())
    finally:
        servers.close()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    try:
        return make_pki(tmp_path_factory.mktemp("pki"))
    except RuntimeError as error:
        pytest.fail(str(error), pytrace=False)


@pytest.mark.parametrize("mutual", [False, True])
async def test_a_worker_reaches_a_tls_server_with_file_paths_alone(pki: Pki, mutual: bool) -> None:
    store = MemoryJobStore()
    tls = ServerTls.from_files(
        cert_file=pki.server.cert,
        key_file=pki.server.key,
        client_ca_file=pki.ca.cert if mutual else None,
    )
    server = await start_api(store, tls=tls)
    service = JobService(store, clock=SystemClock(), ids=UuidV7Generator())
    worker = Worker(
        server=f"localhost:{server.port}",
        ca_cert=pki.ca.cert,
        client_cert=pki.client.cert if mutual else None,
        client_key=pki.client.key if mutual else None,
    )
    worker.register("echo", _echo)
    try:
        job = await service.enqueue("echo", b"over tls")
        await worker.start()
        done = await finished(store, job.id)
        assert done.result == b"over tls"
    finally:
        await worker.stop(grace_s=0)
        await server.stop(None)
        await store.close()

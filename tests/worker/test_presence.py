"""Worker presence from the worker's side: it registers, heartbeats and leaves.

On every path (direct store, Redis, through the server): a started worker is
listed with who it is and how busy it is, a stopped one is gone at once, and
a worker process killed with SIGKILL disappears once its time to live passes.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from jobqueue.domain import PresenceStore, WorkerInfo
from jobqueue.redis import RedisJobStore, RedisStoreSettings
from jobqueue.worker import JobContext, Worker, WorkerSettings
from tests.worker.conftest import Harness
from tests.worker.test_command import APP, SCRIPT
from tests.worker.test_command import _reap as reap
from tests.worker.test_command import _start as start_command
from tests.worker.test_command import _stop as stop_command

ROOT = Path(__file__).resolve().parents[2]


async def listed(store: object) -> list[WorkerInfo]:
    assert isinstance(store, PresenceStore)
    return await store.list_workers()


async def wait_listed(
    store: object, condition: Callable[[list[WorkerInfo]], bool], within_s: float = 5.0
) -> list[WorkerInfo]:
    """Poll the list until ``condition`` holds (presence has no change events to wait on)."""
    async with asyncio.timeout(within_s):
        while True:
            workers = await listed(store)
            if condition(workers):
                return workers
            await asyncio.sleep(0.02)


async def test_a_started_worker_is_listed_with_its_identity_and_leaves_on_stop(
    harness: Harness,
) -> None:
    release = asyncio.Event()

    async def hold(job: JobContext) -> None:
        await release.wait()

    worker = harness.worker(presence_ttl_ms=1_000)
    worker.register("held", hold)
    await worker.start()
    (info,) = await wait_listed(harness.store, lambda workers: len(workers) == 1)
    assert re.fullmatch(r"[A-Za-z0-9_.:-]+-\d+-[0-9a-f]{8}", info.id)
    assert (info.host, info.pid, info.types) == (socket.gethostname(), os.getpid(), ("held",))
    assert info.sdk.startswith("jobqueue-python/")
    assert (info.concurrency, info.busy) == (worker.settings.concurrency, 0)
    assert info.started_at_ms <= info.last_seen_at_ms

    job = await harness.enqueue("held")
    # Heartbeats every third of the 1 s ttl carry the busy slots.
    await wait_listed(harness.store, lambda workers: [w.busy for w in workers] == [1])
    release.set()
    await harness.wait_status(job.id)
    await wait_listed(harness.store, lambda workers: [w.busy for w in workers] == [0])

    await worker.stop()
    assert await listed(harness.store) == []


async def test_a_worker_with_presence_off_is_never_listed(harness: Harness) -> None:
    worker = harness.worker(presence_ttl_ms=0)
    worker.register("quiet", lambda job: None)
    await worker.start()
    job = await harness.enqueue("quiet")
    await harness.wait_status(job.id)
    assert await listed(harness.store) == []
    await worker.stop()


def test_settings_refuse_a_ttl_out_of_range_and_a_lease_the_store_refuses() -> None:
    for ttl in (999, 600_001, -1):
        with pytest.raises(ValueError, match="presence_ttl_ms"):
            WorkerSettings(presence_ttl_ms=ttl)
    with pytest.raises(ValueError, match="lease_ms must be at least 100"):
        WorkerSettings(lease_ms=99)
    with pytest.raises(ValueError, match="lease_ms must be at least 100"):
        Worker(redis_url="redis://127.0.0.1:1/0", lease_ms=10)
    assert WorkerSettings(lease_ms=100, presence_ttl_ms=0).lease_ms == 100


def start_command_argv() -> list[str]:
    return [str(SCRIPT), f"{APP}:worker", "--redis-url", "redis://127.0.0.1:1/0"]


def spawn_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.worker._presence_worker"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
async def presence_store(redis_url: str, key_prefix: str) -> AsyncIterator[RedisJobStore]:
    store = RedisJobStore(RedisStoreSettings(url=redis_url, key_prefix=key_prefix.rstrip(":")))
    yield store
    await store.close()


@pytest.mark.integration
@pytest.mark.redis
async def test_a_killed_worker_process_disappears_after_its_ttl_and_a_stopped_one_at_once(
    presence_store: RedisJobStore, redis_url: str, key_prefix: str
) -> None:
    ttl_ms = 3_000
    env = {
        **os.environ,
        "JOBQUEUE_REDIS_URL": redis_url,
        "JOBQUEUE_KEY_PREFIX": key_prefix.rstrip(":"),
        "PRESENCE_TTL_MS": str(ttl_ms),
    }
    processes = [spawn_worker(env) for _ in range(2)]
    killed, stopped = processes
    try:
        await wait_listed(presence_store, lambda workers: len(workers) == 2, within_s=30)
        pids = {w.pid for w in await listed(presence_store)}
        assert pids == {killed.pid, stopped.pid}

        killed.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        stopped.send_signal(signal.SIGTERM)
        assert stopped.wait(15) == 0
        # The graceful one said goodbye at once; the killed one stays listed for
        # its ttl after its last heartbeat, which is at least 2/3 of the ttl
        # after the kill (a stop slower than that, on a busy machine, may find
        # it gone already, which is no fault).
        workers = await listed(presence_store)
        since_kill_s = time.monotonic() - killed_at
        assert stopped.pid not in [w.pid for w in workers]
        if since_kill_s < ttl_ms * 2 / 3 / 1000:
            assert [w.pid for w in workers] == [killed.pid], since_kill_s
        await wait_listed(presence_store, lambda workers: workers == [], within_s=15)
        gone_after_s = time.monotonic() - killed_at
        # Its last heartbeat came at most a third of the ttl before the kill.
        assert ttl_ms * 2 / 3 / 1000 - 0.5 <= gone_after_s <= ttl_ms / 1000 + 2.0
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
            process.wait(10)


@pytest.mark.integration
@pytest.mark.redis
async def test_the_worker_command_takes_the_ttl_and_its_process_is_listed(
    presence_store: RedisJobStore, redis_url: str, key_prefix: str
) -> None:
    process = start_command(
        "--redis-url",
        redis_url,
        "--key-prefix",
        key_prefix.rstrip(":"),
        "--presence-ttl-ms",
        "1500",
    )
    try:
        (info,) = await wait_listed(presence_store, lambda workers: len(workers) == 1, within_s=30)
        assert info.pid == process.pid
        assert info.types == ("echo", "boom", "nap")
        await stop_command(process)
        assert await listed(presence_store) == []
    finally:
        reap(process)


def test_the_worker_command_refuses_a_ttl_out_of_range() -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("JOBQUEUE_")}
    refused = subprocess.run(
        [*start_command_argv(), "--presence-ttl-ms", "10"],
        capture_output=True,
        text=True,
        check=False,
        env=clean,
        timeout=60,
    )
    assert refused.returncode == 2
    assert "presence_ttl_ms must be 0 (off) or between 1000 and 600000" in refused.stderr

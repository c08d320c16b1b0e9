"""Progress in the CLI: `jobqueue get` shows it, `jobqueue watch` streams it (a real server)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from jobqueue.client import AsyncJobClient
from jobqueue.worker import GrpcSource, JobContext, Worker, WorkerSettings
from tests.client.test_cli import JOBQUEUE, environment, run_cli_async


@pytest.fixture
async def go_on() -> asyncio.Event:
    return asyncio.Event()


@pytest.fixture
async def worker(target: str, go_on: asyncio.Event) -> AsyncIterator[Worker]:
    worker = Worker(
        GrpcSource(target, timeout_s=5),
        settings=WorkerSettings(claim_wait_ms=200, shutdown_grace_s=1),
    )

    @worker.handler("cli_progress")
    async def resize(job: JobContext) -> None:
        job.progress(0.4, "resizing")
        await go_on.wait()
        job.progress(1.0, "done")

    await worker.start()
    yield worker
    await worker.stop(grace_s=0)


async def test_get_shows_progress_and_watch_streams_it(
    target: str, worker: Worker, go_on: asyncio.Event
) -> None:
    async with AsyncJobClient(target=target, timeout_s=5) as client:
        job = await client.enqueue("cli_progress")
        async with asyncio.timeout(10):
            async for seen in client.watch(job.id):
                if seen.progress == 0.4:
                    break
    shown = await run_cli_async(target, "get", job.id)
    assert shown.code == 0, shown
    assert "40% resizing" in shown.stdout

    # The watch prints the job's state at once: read it before the handler goes on.
    process = await asyncio.create_subprocess_exec(
        str(JOBQUEUE),
        *("--server", target, "--json", "watch", job.id),
        stdout=asyncio.subprocess.PIPE,
        env=environment(),
    )
    assert process.stdout is not None
    async with asyncio.timeout(30):
        first = json.loads(await process.stdout.readline())
        go_on.set()
        rest, _ = await process.communicate()
    assert process.returncode == 0
    assert (first["status"], first["progress"], first["progress_message"]) == (
        "running",
        0.4,
        "resizing",
    )
    last = json.loads(rest.splitlines()[-1])
    assert (last["status"], last["progress"], last["progress_message"]) == (
        "completed",
        1.0,
        "done",
    )
    human = await run_cli_async(target, "watch", job.id)
    assert "progress=100% done" in human.stdout

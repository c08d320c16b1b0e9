"""The README's "Submitting jobs from Python" snippet, run as written against a real server.

Only its target is swapped for the test server's; a worker through the same
server completes the job the snippet waits for.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from jobqueue.client import AsyncJobClient, JobStatus
from jobqueue.worker import GrpcSource, JobContext, Worker, WorkerSettings

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "README.md"
README_TARGET = "localhost:8080"


def client_snippet() -> str:
    section = README.read_text(encoding="utf-8").split("## Submitting jobs from Python\n", 1)[1]
    found = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert found, "the client section has no python block"
    return found.group(1)


@pytest.fixture
async def worker(target: str) -> AsyncIterator[None]:
    worker = Worker(GrpcSource(target, timeout_s=5), settings=WorkerSettings(claim_wait_ms=200))

    @worker.handler("send_email")
    async def send_email(job: JobContext) -> dict[str, Any]:
        return {"sent_to": job.json()["to"]}

    await worker.start()
    yield
    await worker.stop(grace_s=0)


async def test_the_snippet_runs_as_written(target: str, worker: None, tmp_path: Path) -> None:
    assert README_TARGET in client_snippet()
    script = tmp_path / "submit.py"
    script.write_text(client_snippet().replace(README_TARGET, target), encoding="utf-8")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    assert out.decode().splitlines() == ["JobStatus.COMPLETED {'sent_to': 'ada@example.com'}"]
    async with AsyncJobClient(target=target) as client:
        stats = {row.type: row for row in (await client.stats()).types}
        assert stats["resize_image"].pending == 3
        assert stats["send_email"].scheduled == 1
        later = [job async for job in client.list("send_email", JobStatus.PENDING)]
        assert [job.payload_json() for job in later] == [{"to": "bob@example.com"}]

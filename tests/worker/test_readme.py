"""The README's "Writing a worker" snippet, executed as the script a reader would save.

It must stay the short form (one import line, one object before the first
handler) and must work as written: it runs as a real process against a real
Redis (only its URL is swapped for the test's), takes jobs, and stops on SIGTERM.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from jobqueue.domain import JobService, JobStatus, SystemClock, UuidV7Generator
from jobqueue.redis import RedisJobStore, RedisStoreSettings

from ._waits import finished

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
README_URL = "redis://127.0.0.1:6379/0"


def worker_snippet() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Writing a worker\n", 1)[1]
    found = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert found, "the worker section has no python block"
    return found.group(1)


def test_the_snippet_needs_one_import_and_one_object_before_its_first_handler() -> None:
    head = worker_snippet().split("@worker.handler", 1)[0]
    lines = [line for line in head.splitlines() if line.strip()]
    assert lines == [
        "from jobqueue.worker import JobContext, PermanentError, RetryPolicy, Worker",
        f'worker = Worker(redis_url="{README_URL}", concurrency=100)',
    ]


@pytest.mark.integration
@pytest.mark.redis
async def test_the_snippet_runs_as_written(redis_url: str, tmp_path: Path) -> None:
    # Its own database of the test Redis, since the snippet uses the default key prefix.
    url = redis_url.rsplit("/", 1)[0] + "/9"
    script = tmp_path / "tasks.py"
    script.write_text(worker_snippet().replace(README_URL, url), encoding="utf-8")
    store = RedisJobStore(RedisStoreSettings(url=url))
    service = JobService(store, clock=SystemClock(), ids=UuidV7Generator())
    process = _start(script)
    try:
        good = await service.enqueue("send_email", b'{"to": "ada@example.org"}')
        bad = await service.enqueue("send_email", b'{"to": "nobody"}')
        image = await service.enqueue("resize_image", b"...")
        sent, refused, resized = [await finished(store, job.id) for job in (good, bad, image)]
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=5)
        await store.close()
    assert process.returncode == 0, err.decode()
    assert sent.status is JobStatus.COMPLETED
    assert json.loads(sent.result or b"") == {"sent_to": "ada@example.org"}
    assert (refused.status, refused.attempts) == (JobStatus.FAILED, 1)
    assert refused.last_error == "PermanentError: not an address"
    assert (resized.status, resized.result) == (JobStatus.COMPLETED, None)


def _start(script: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(script)],
        cwd=script.parent,
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )

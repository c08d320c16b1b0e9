"""Log lines that say what happened: the job, the attempt and the error, in the message."""

from __future__ import annotations

import io
import json
import logging

import pytest

from jobqueue.domain import JobService, RetryPolicy, SystemClock, UuidV7Generator
from jobqueue.memory import MemoryJobStore
from jobqueue.worker import JobContext, JsonFormatter, StoreSource, Worker

from ._waits import finished


async def test_every_line_about_a_job_names_it_and_its_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = MemoryJobStore()
    service = JobService(store, clock=SystemClock(), ids=UuidV7Generator())
    worker = Worker(StoreSource(store), concurrency=2)

    @worker.handler("flaky", max_attempts=2, retry=RetryPolicy(base_ms=1, jitter=False))
    async def flaky(job: JobContext) -> None:
        raise ValueError(f"bad on attempt {job.attempt}")

    with caplog.at_level(logging.INFO, logger="jobqueue.worker"):
        await worker.start()
        job = await service.enqueue("flaky")
        await finished(store, job.id)
        await worker.stop(grace_s=1)
    messages = [record.getMessage() for record in caplog.records]
    about_job = [r for r in caplog.records if getattr(r, "job_id", None) == job.id]
    assert [r.levelname for r in about_job] == ["WARNING", "ERROR"]
    retry, final = (record.getMessage() for record in about_job)
    assert retry.startswith(f"job {job.id} (flaky, attempt 1 of 2) failed after ")
    assert retry.endswith("retrying in 0.001 s: ValueError: bad on attempt 1")
    assert final.startswith(f"job {job.id} (flaky, attempt 2 of 2) failed for good after ")
    assert final.endswith("(no attempts left): ValueError: bad on attempt 2")
    for record in about_job:  # structured handlers keep their fields; the log keeps the trace
        assert (vars(record)["job_type"], vars(record)["error_type"]) == ("flaky", "ValueError")
        assert record.exc_info is not None
    # ...and the job keeps only the type and message, no traceback with machine paths.
    failed = await store.get(job.id)
    assert failed is not None
    assert failed.last_error == "ValueError: bad on attempt 2"
    assert messages[0].startswith("worker started: source store MemoryJobStore, types flaky, ")
    assert "concurrency 2" in messages[0]
    assert "jobqueue-worker 0.1.0" in messages[0]
    assert messages[-1].startswith("worker stopped: 2 outcomes stored in ")


async def test_a_worker_may_opt_in_to_storing_the_traceback() -> None:
    store = MemoryJobStore()
    service = JobService(store, clock=SystemClock(), ids=UuidV7Generator())
    worker = Worker(StoreSource(store), store_traceback=True)

    @worker.handler("boom", max_attempts=1)
    async def boom(job: JobContext) -> None:
        raise KeyError("missing")

    await worker.start()
    job = await service.enqueue("boom")
    await finished(store, job.id)
    await worker.stop(grace_s=1)
    failed = await store.get(job.id)
    assert failed is not None
    assert failed.last_error is not None
    assert failed.last_error.startswith("KeyError: 'missing'\nTraceback (most recent call last):")
    assert "in boom" in failed.last_error


def test_the_json_formatter_writes_one_object_a_line_with_the_extra_fields() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("tests.worker.json")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("job %s failed", "j1", extra={"job_id": "j1", "attempt": 2, "odd": {1, 2}})
        try:
            raise RuntimeError("kaput")
        except RuntimeError:
            log.exception("with a trace")
    finally:
        log.removeHandler(handler)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "job j1 failed"
    assert (first["level"], first["logger"]) == ("WARNING", "tests.worker.json")
    assert (first["job_id"], first["attempt"], first["odd"]) == ("j1", 2, "{1, 2}")
    assert first["time"].endswith("+00:00")
    assert "exception" not in first
    assert second["exception"].startswith("Traceback")
    assert "RuntimeError: kaput" in second["exception"]

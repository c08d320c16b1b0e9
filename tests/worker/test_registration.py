"""Registering handlers and the worker's life cycle, with no jobs involved."""

from __future__ import annotations

import asyncio
import functools

import pytest

from jobqueue.domain import InvalidJob, Job, JobStatus, Lease
from jobqueue.memory import MemoryJobStore
from jobqueue.worker import (
    HandlerAlreadyRegistered,
    JobContext,
    StoreSource,
    Worker,
    WorkerSettings,
    WorkerStateError,
)
from jobqueue.worker._outcomes import describe_error


def _worker() -> Worker:
    return Worker(StoreSource(MemoryJobStore()), concurrency=3, lease_ms=1_000)


async def _noop(job: JobContext) -> None:
    return None


def test_keyword_options_override_the_settings() -> None:
    worker = Worker(
        StoreSource(MemoryJobStore()), settings=WorkerSettings(lease_ms=9_000), concurrency=3
    )
    assert worker.settings.concurrency == 3
    assert worker.settings.lease_ms == 9_000
    assert worker.settings.heartbeat_s == 3.0


def test_a_type_gets_one_handler_only() -> None:
    worker = _worker()
    worker.register("a", _noop)
    with pytest.raises(HandlerAlreadyRegistered):
        worker.register("a", _noop)


def test_a_type_must_be_a_valid_job_type() -> None:
    with pytest.raises(InvalidJob):
        _worker().register("no spaces", _noop)


def test_async_and_sync_handlers_are_told_apart() -> None:
    worker = _worker()

    class Callable:
        async def __call__(self, job: JobContext) -> None:
            return None

    worker.register("coroutine", _noop)
    worker.register("partial", functools.partial(_noop))
    worker.register("instance", Callable())
    worker.register("plain", lambda job: None)
    assert worker.types == ("coroutine", "partial", "instance", "plain")
    handlers = worker._handlers
    assert [handlers[name].is_async for name in worker.types] == [True, True, True, False]


async def test_a_worker_without_handlers_does_not_start() -> None:
    with pytest.raises(WorkerStateError):
        await _worker().start()


async def test_a_worker_starts_once_and_takes_no_handlers_after_starting() -> None:
    worker = _worker()
    worker.register("a", _noop)
    await worker.start()
    try:
        with pytest.raises(WorkerStateError):
            await worker.start()
        with pytest.raises(WorkerStateError):
            worker.register("b", _noop)
    finally:
        await worker.stop()
    await worker.stop()  # stopping twice is harmless


def test_invalid_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        WorkerSettings(concurrency=0)
    with pytest.raises(ValueError, match="heartbeat"):
        WorkerSettings(lease_ms=1_000, heartbeat_interval_ms=1_000)


def test_a_stored_error_is_type_and_message_without_paths_unless_asked() -> None:
    def inner() -> None:
        raise ValueError("bad value")

    try:
        inner()
    except ValueError as error:
        plain = describe_error(error)
        full = describe_error(error, with_traceback=True)
    assert plain == "ValueError: bad value"
    assert full.startswith("ValueError: bad value\nTraceback (most recent call last):\n")
    assert "in inner" in full
    assert __file__ in full  # the machine path that the default keeps out of the job
    assert describe_error(asyncio.CancelledError()) == "CancelledError"
    long = describe_error(RuntimeError("x" * 5_000))
    assert len(long) == 1_000
    assert long.startswith("RuntimeError: xxx")


def test_timeout_is_a_deprecated_alias_of_timeout_s() -> None:
    worker = _worker()
    with pytest.warns(DeprecationWarning, match="timeout_s"):
        worker.register("old", _noop, timeout=2.5)
    with pytest.warns(DeprecationWarning, match="timeout_s"):
        worker.handler("older", timeout=1.5)(_noop)
    worker.register("new", _noop, timeout_s=3.5)
    timeouts = [worker._handlers[name].timeout_s for name in ("old", "older", "new")]
    assert timeouts == [2.5, 1.5, 3.5]
    with (
        pytest.raises(TypeError, match="not both"),
        pytest.warns(DeprecationWarning, match="timeout_s"),
    ):
        worker.register("both", _noop, timeout_s=1, timeout=1)


def test_a_worker_takes_one_source() -> None:
    store = MemoryJobStore()
    with pytest.raises(ValueError, match="one of source, redis_url and server"):
        Worker(StoreSource(store), redis_url="redis://127.0.0.1:1/0")
    with pytest.raises(ValueError, match="one of source, redis_url and server"):
        Worker(redis_url="redis://127.0.0.1:1/0", server="127.0.0.1:1")
    with pytest.raises(ValueError, match="go with server"):
        Worker(redis_url="redis://127.0.0.1:1/0", auth_token="t")
    with pytest.raises(ValueError, match="key_prefix must be"):
        Worker(redis_url="redis://127.0.0.1:1/0", key_prefix="bad prefix")


async def test_a_worker_without_a_source_says_how_to_give_one() -> None:
    worker = Worker()
    worker.register("a", _noop)
    with pytest.raises(WorkerStateError, match="redis_url"):
        await worker.start()


def test_wait_cancelled_takes_timeout_s_and_the_old_name_with_a_warning() -> None:
    worker = _worker()
    worker.register("plain", lambda job: None)
    job = Job(
        id="0" * 32,
        type="plain",
        payload=b"",
        status=JobStatus.RUNNING,
        execution_time_ms=0,
        created_at=0,
        updated_at=0,
        attempts=1,
    )
    ctx = JobContext(Lease(job, "token", 0), worker._handlers["plain"], 3)
    assert ctx.wait_cancelled(timeout_s=0) is False
    with pytest.warns(DeprecationWarning, match="timeout_s"):
        assert ctx.wait_cancelled(timeout=0) is False
    ctx._cancel()
    assert ctx.wait_cancelled(0) is True

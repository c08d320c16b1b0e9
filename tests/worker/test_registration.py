"""Registering handlers and the worker's life cycle, with no jobs involved."""

from __future__ import annotations

import asyncio
import functools

import pytest

from jobqueue.domain import InvalidJob
from jobqueue.memory import MemoryJobStore
from jobqueue.worker import (
    HandlerAlreadyRegistered,
    JobContext,
    StoreSource,
    Worker,
    WorkerSettings,
    WorkerStateError,
    describe_error,
)


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


def test_an_error_description_has_type_message_and_frames() -> None:
    def inner() -> None:
        raise ValueError("bad value")

    try:
        inner()
    except ValueError as error:
        text = describe_error(error)
    assert text.startswith("ValueError: bad value\n")
    assert "in inner" in text
    assert describe_error(asyncio.CancelledError()) == "CancelledError: "

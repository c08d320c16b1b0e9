"""Handlers the worker tests register: one that returns at once, one that waits to be stopped."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from jobqueue.worker import JobContext


async def return_ok(job: JobContext) -> str:
    return "ok"


def interruptible() -> tuple[Callable[[JobContext], Awaitable[str]], asyncio.Event, asyncio.Event]:
    """An async handler that sleeps 30 s; events set when it starts and when it is cancelled.

    For tests of what stops a running handler (a cancel, a lost lease, renewals
    that cannot get through): the test waits on the second event, bounded.
    """
    started = asyncio.Event()
    interrupted = asyncio.Event()

    async def sleep_until_cancelled(job: JobContext) -> str:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            interrupted.set()
            raise
        return "never"

    return sleep_until_cancelled, started, interrupted

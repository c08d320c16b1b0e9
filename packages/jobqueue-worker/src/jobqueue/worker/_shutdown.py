"""The waits of a graceful stop, each bounded so that ``Worker.stop`` always returns."""

from __future__ import annotations

import asyncio

from ._logging import logger
from ._state import InFlight


async def await_claim(task: asyncio.Task[None] | None, bound_s: float) -> None:
    """Let an outstanding claim return so the jobs it took are released, not stranded.

    A claim once sent is never cancelled: the store may already have leased
    jobs to it, and only the reply tells us which. The claim is bounded by
    its wait and the source's own timeouts; a source hanging far beyond
    them (``bound_s``) is left behind, and its leases expire unconfirmed,
    which costs those jobs no attempt.
    """
    if task is None or task.done():
        return
    done, _ = await asyncio.wait([task], timeout=bound_s)
    if not done:
        logger.warning(
            "an in-flight claim did not return within %.3g s; its leases will expire unconfirmed",
            bound_s,
            extra={"waited_s": round(bound_s, 3)},
        )


async def wait_tasks(tasks: set[asyncio.Task[None]], deadline: float, force: asyncio.Event) -> None:
    """Wait for running jobs until ``deadline`` (loop time), or until ``force`` is set."""
    loop = asyncio.get_running_loop()
    pending = {task for task in tasks if not task.done()}
    if not pending:
        return
    forced = asyncio.ensure_future(force.wait())
    try:
        while pending and not forced.done():
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            done, _ = await asyncio.wait(
                pending | {forced}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
            )
            pending -= done
    finally:
        forced.cancel()


async def wait_settled(state: InFlight, deadline: float) -> None:
    """Wait until every outcome is stored, or ``deadline`` (loop time) passes."""
    loop = asyncio.get_running_loop()
    while state.jobs or state.unsettled:
        remaining = deadline - loop.time()
        if remaining <= 0:
            return
        state.slots_freed.clear()
        try:
            await asyncio.wait_for(state.slots_freed.wait(), remaining)
        except TimeoutError:
            return


async def wait_cancelled(tasks: list[asyncio.Task[None]], timeout_s: float = 2.0) -> None:
    """Wait a bounded time for cancelled tasks to end.

    A library awaited inside a task may swallow its cancellation (redis-py can
    during a command); ``stop`` must return anyway.
    """
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=timeout_s)
    for task in pending:
        logger.warning(
            "background task %s ignored cancellation",
            task.get_name(),
            extra={"task": task.get_name()},
        )

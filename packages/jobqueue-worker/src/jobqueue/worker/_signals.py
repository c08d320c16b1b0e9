"""SIGTERM and SIGINT: one graceful stop, and a later second signal to hurry it.

A signal sent to a process group reaches every process in it: ``timeout``,
systemd, ``kill -- -PGID`` and a terminal's Ctrl-C all do that, and ``uv run``
(which is in the group too) forwards the signal it got to its child as well.
So one request to stop arrives as two signals a few milliseconds apart. A
repeat within ``REPEAT_WINDOW_S`` of the first is therefore that same request,
delivered twice; only a signal after it means "stop now".
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable

from ._logging import logger

REPEAT_WINDOW_S = 1.0
"""A second signal sooner than this after the first is the same stop request."""

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


async def run_until_signalled(
    start: Callable[[], Awaitable[None]],
    stop: Callable[[], Awaitable[None]],
    force: asyncio.Event,
    grace_s: float,
) -> None:
    """``start``, wait for SIGTERM or SIGINT, then ``stop``; a later signal sets ``force``."""
    loop = asyncio.get_running_loop()
    requested = asyncio.Event()
    first: list[float] = []

    def on_signal(signum: int) -> None:
        name = signal.Signals(signum).name
        now = loop.time()
        if not first:
            first.append(now)
            logger.info(
                "%s received: stopping gracefully, running jobs have %.3g s to finish "
                "(another signal after %.3g s cancels them at once)",
                name,
                grace_s,
                REPEAT_WINDOW_S,
                extra={"signal": name},
            )
            requested.set()
        elif now - first[0] < REPEAT_WINDOW_S:
            logger.debug(
                "%s again %.0f ms after the first: the same stop request (sent to the "
                "process group), ignored",
                name,
                (now - first[0]) * 1000,
                extra={"signal": name},
            )
        elif not force.is_set():
            logger.warning(
                "second signal (%s): cancelling running jobs now and releasing them",
                name,
                extra={"signal": name},
            )
            force.set()

    for signum in _SIGNALS:
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        await start()
        await requested.wait()
        await stop()
    finally:
        for signum in _SIGNALS:
            loop.remove_signal_handler(signum)

"""One in-process listener of one pub/sub channel, served by a Subscriber (_pubsub.py).

Messages are hints (a job changed, a cancel was requested): a listener keeps
the newest ``max_messages``, and is woken when one arrives, when some may have
been lost (a reconnect), or when the store closes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._pubsub import Subscriber


class Listener:
    """One in-process subscriber of one channel.

    Messages queue up to ``max_messages`` (the oldest are dropped beyond
    that: they are hints, see the module docstring). ``wait`` returns when a
    message arrives, when some may have been lost to a reconnect, or when the
    subscriber closes.
    """

    def __init__(
        self, channel: str, *, max_messages: int, signal: asyncio.Event | None = None
    ) -> None:
        self.channel = channel
        self.closed = False
        self._messages: deque[bytes] = deque(maxlen=max_messages)
        # Listeners of several channels may share one signal: a wait on any wakes for all.
        self._signal = signal or asyncio.Event()
        self._confirmed: asyncio.Future[None] | None = None
        self._hub: Subscriber | None = None

    async def wait(self, timeout_s: float | None = None) -> None:
        """Until something happened (see the class docstring) or ``timeout_s`` passed."""
        if not self._signal.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):
                    await self._signal.wait()
        self._signal.clear()

    def take(self) -> list[bytes]:
        """The messages received since the last call, oldest first."""
        messages = list(self._messages)
        self._messages.clear()
        return messages

    def close(self) -> None:
        """Stop listening; the channel is unsubscribed when no listener is left."""
        if self._hub is not None:
            self._hub._leave(self)
            self._hub = None

    def _deliver(self, message: bytes) -> None:
        self._messages.append(message)
        self._signal.set()

    def _interrupt(self) -> None:
        self._signal.set()

    def _confirm(self) -> None:
        if self._confirmed is not None and not self._confirmed.done():
            self._confirmed.set_result(None)

    def _fail(self, error: BaseException) -> bool:
        """Fail a listener still waiting for its subscription; False if it waits for none."""
        if self._confirmed is None or self._confirmed.done():
            return False
        self._confirmed.set_exception(error)
        return True

"""The fast path's watch over a claim, and the hand-back of an answer that reaches nobody.

Split from ``_fast`` (which answers the call): what a call whose caller may
leave needs, as connectrpc watches every call. A claim's leases are the one
answer worth undoing: jobs leased to a caller that left would stay RUNNING
until their leases expire, with an attempt spent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from google.protobuf.message import Message

from mpataki.jobqueue.v1 import worker_pb2 as wpb

Receive = Callable[[], Awaitable[dict[str, Any]]]
HandBack = Callable[[bytes], Awaitable[None]]
"""Undoes a serialized answer that reaches nobody (see ``FastMethod``)."""

_log = logging.getLogger(__name__)


class DeadlineContext:
    """What the servicers use of a call's context: the time left, and whether its caller is gone."""

    __slots__ = ("_deadline", "_left")

    def __init__(self, deadline: float | None, left: Left | None = None) -> None:
        self._deadline = deadline
        self._left = left

    def time_remaining(self) -> float | None:
        """Seconds left before the caller's deadline, None without one (as grpc answers)."""
        if self._deadline is None:
            return None
        return self._deadline - asyncio.get_running_loop().time()

    def cancelled(self) -> bool:
        """True once the caller's deadline has passed or (watched calls) the caller left."""
        if self._left is not None and self._left.now:
            return True
        remaining = self.time_remaining()
        return remaining is not None and remaining <= 0


class Left:
    """Whether the caller left (its stream was reset or closed) while its call ran."""

    __slots__ = ("now",)

    def __init__(self) -> None:
        self.now = False


def claim_hand_back(settle: Callable[[Any, Any], Awaitable[Any]]) -> HandBack:
    """Hands back the leases of a serialized ``ClaimJobsResponse`` through ``settle`` (SettleJobs).

    RELEASE gives each job back untried, its attempt returned, as the worker
    servicer does with a claim whose caller left while it waited.
    """

    async def hand_back(data: bytes) -> None:
        leases = wpb.ClaimJobsResponse.FromString(data).leases
        if not leases:
            return
        release = wpb.OutcomeKind.OUTCOME_KIND_RELEASE
        outcomes = [wpb.Outcome(job_id=x.job.id, token=x.token, kind=release) for x in leases]
        try:
            await settle(wpb.SettleJobsRequest(outcomes=outcomes), DeadlineContext(None))
        except Exception as error:
            # Unconfirmed leases expire without charging an attempt: nothing is lost.
            _log.warning("could not hand back %d lease(s) of a left claim: %s", len(leases), error)

    return hand_back


async def watched(
    call: Callable[[Any, Any], Awaitable[bytes]],
    hand_back: HandBack | None,
    request: Message,
    context: DeadlineContext,
    receive: Receive,
    left: Left,
    deadline_scope: asyncio.Timeout,
) -> bytes:
    """The call, cancelled at its deadline or as soon as its caller leaves.

    As connectrpc does: the watch starts only once the call suspends (one that
    completes at once never pays for a task), reads ``receive`` until the
    disconnect, and then moves the call's timeout (``deadline_scope``) to now,
    which cancels it where it waits; ``left`` says which one happened. A cancellation that
    arrives while the watch is wound down (the deadline, the server) is not
    swallowed: an answer already made is handed back, as it reaches nobody.
    """
    loop = asyncio.get_running_loop()
    watch: asyncio.Task[None] | None = None

    async def watching() -> None:
        with contextlib.suppress(Exception):
            while (await receive())["type"] != "http.disconnect":
                pass
            left.now = True
            if not deadline_scope.expired():
                deadline_scope.reschedule(loop.time())

    def start() -> None:
        nonlocal watch
        watch = loop.create_task(watching())

    handle = loop.call_soon(start)
    data: bytes | None = None
    try:
        data = await call(request, context)
        return data
    finally:
        handle.cancel()
        if watch is not None:
            watch.cancel()
            try:
                await asyncio.wait((watch,))  # raises our own cancellation, never the watch's
            except asyncio.CancelledError:
                if data is not None and hand_back is not None:
                    hold(asyncio.ensure_future(hand_back(data)))
                raise


_HELD: set[asyncio.Future[None]] = set()


def hold(future: asyncio.Future[None]) -> None:
    """Keeps a hand-back (a task of its own, so no cancellation reaches it) until it ends."""
    _HELD.add(future)
    future.add_done_callback(_HELD.discard)

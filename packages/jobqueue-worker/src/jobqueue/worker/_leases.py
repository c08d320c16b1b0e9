"""Lease keeping: confirm fresh leases, renew every lease, give up the ones we cannot keep.

A worker may run a job only while it holds the job's lease, and the store is
the judge of that (by its own clock). The worker cannot read the store's clock,
but it knows when it *sent* each claim and renew: the store's deadline can only
be later than that send time plus the lease. So the worker keeps that local
deadline per job on its monotonic clock, and when renewals keep failing it
stops the handler a margin before it, sends no outcome, and so never runs a job
the store has already handed to someone else.
"""

from __future__ import annotations

import asyncio
import collections
import math
import time
from collections.abc import Callable
from typing import Any

from jobqueue.domain import LeaseState

from ._context import JobContext
from ._logging import error_text, logger
from ._settings import WorkerSettings
from ._source import JobSource


def backoff_s(failures: int, cap_s: float) -> float:
    """The pause after ``failures`` failed calls in a row: 50 ms doubling up to ``cap_s``."""
    return float(min(0.05 * 2 ** min(failures - 1, 16), cap_s))


class LeaseKeeper:
    """Keeps the leases of a worker's jobs in flight, in three background loops.

    - *confirm*: the store counts a claim's attempt only once its lease is
      confirmed by a renew or the settle (a claim whose reply was lost then
      costs the job nothing). Jobs still running ``confirm_after_ms`` after
      their claim get one renew of just their leases; jobs that finished by
      then are confirmed by their settle, so fast jobs cost no extra call. It
      runs on its own schedule, never waiting for the heartbeat's.
    - *heartbeat*: renews every lease we hold, including jobs whose outcome
      waits to be settled (a settle that keeps failing must not let their lease
      run out). It fences: a running job whose local deadline minus the margin
      passes without a successful renew is given up, also while a renew hangs.
    - *cancellations*: follows the source's stream of cancel requests, so a
      running handler is stopped at once instead of at the next heartbeat.

    What giving up or cancelling a job means is the worker's: it passes
    ``lose(ctx, reason)`` and ``cancel(ctx)``.
    """

    def __init__(
        self,
        source: JobSource,
        settings: WorkerSettings,
        inflight: dict[str, JobContext],
        *,
        lose: Callable[[JobContext, str], None],
        cancel: Callable[[JobContext], None],
    ) -> None:
        self._source = source
        self._settings = settings
        self._inflight = inflight
        self._lose = lose
        self._cancel = cancel
        self._lease_s = settings.lease_ms / 1000
        self._margin_s = settings.fence_margin_s
        self._confirm_after_s = settings.confirm_after_ms / 1000
        # When each claim's fresh leases are due for confirmation. Times only: a
        # list of the contexts would keep every finished job alive that long,
        # and the garbage collector's work grows with live objects.
        self._fresh: collections.deque[float] = collections.deque()
        self._fresh_ready = asyncio.Event()
        # True while the last heartbeat failed: deadlines may then run out between beats.
        self._behind = False
        self.closing = False

    def claimed(self) -> None:
        """Schedule the confirmation of the leases a claim just returned."""
        self._fresh.append(time.monotonic() + self._confirm_after_s)
        self._fresh_ready.set()

    def start(self) -> list[asyncio.Task[None]]:
        return [
            asyncio.create_task(self._confirm_loop(), name="jobqueue-confirm"),
            asyncio.create_task(self._heartbeat_loop(), name="jobqueue-heartbeat"),
            asyncio.create_task(self._cancellations_loop(), name="jobqueue-cancellations"),
        ]

    # -- confirm ----------------------------------------------------------------

    async def _confirm_loop(self) -> None:
        fresh = self._fresh
        # A lease's claim was sent at its first deadline less the lease.
        claimed_before = self._lease_s - self._confirm_after_s
        while not self.closing:
            if not fresh:
                self._fresh_ready.clear()
                await self._fresh_ready.wait()
                continue
            now = time.monotonic()
            wait = fresh[0] - now
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            while fresh and fresh[0] <= now:
                fresh.popleft()
            # Everything due goes in one call, as outcomes do in the settle
            # loop; a settle confirms the jobs that finished, a heartbeat may
            # have confirmed others.
            limit = now + claimed_before
            contexts = [
                ctx
                for ctx in self._inflight.values()
                if not (ctx._settling or ctx._confirmed or ctx._lost) and ctx._deadline <= limit
            ]
            if contexts:
                try:
                    await self._renew(contexts)
                except Exception as error:
                    # The heartbeat renews them too; an unconfirmed lease that
                    # runs out costs the job no attempt.
                    text = error_text(error)
                    logger.warning(
                        "confirming %d fresh leases failed (the heartbeat retries): %s",
                        len(contexts),
                        text,
                        extra={"error": text, "count": len(contexts)},
                    )

    # -- heartbeat and fencing --------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        interval = self._settings.heartbeat_s
        while not self.closing:
            await self._sleep_fencing(time.monotonic() + interval)
            contexts = [ctx for ctx in self._inflight.values() if not ctx._lost]
            if not contexts:
                continue
            try:
                await self._renew(contexts, fence=True)
            except Exception as error:
                self._behind = True
                text = error_text(error)
                logger.warning(
                    "renewing %d leases failed (jobs are given up before their deadline "
                    "if this goes on): %s",
                    len(contexts),
                    text,
                    extra={"error": text, "count": len(contexts)},
                )
                self._fence(time.monotonic())
            else:
                self._behind = False

    async def _sleep_fencing(self, wake: float) -> None:
        """Sleep until ``wake``; after a failed heartbeat, fence every deadline met meanwhile."""
        while not self.closing:
            now = time.monotonic()
            until = wake
            if self._behind:
                self._fence(now)
                until = min(wake, self._earliest_fence())
            if until <= now:
                return
            await asyncio.sleep(until - now)

    def _earliest_fence(self) -> float:
        deadline = min(
            (ctx._deadline for ctx in self._inflight.values() if _fenced(ctx)), default=math.inf
        )
        return deadline - self._margin_s

    def _fence(self, now: float) -> None:
        """Give up every running job whose local deadline, less the margin, has passed."""
        limit = now + self._margin_s
        expired = [
            ctx for ctx in self._inflight.values() if _fenced(ctx) and ctx._deadline <= limit
        ]
        for ctx in expired:
            self._lose(ctx, "the lease could not be renewed before its deadline")

    async def _renew(self, contexts: list[JobContext], *, fence: bool = False) -> None:
        """Renew ``contexts`` in one call and apply the answers.

        With ``fence``, deadlines that pass while the call is out are enforced
        as they pass: a renew that hangs must not keep a handler running.
        """
        sent = time.monotonic()
        call = asyncio.ensure_future(
            self._source.renew(
                [(ctx.id, ctx._lease.token) for ctx in contexts], lease_ms=self._settings.lease_ms
            )
        )
        try:
            while fence and not call.done():
                timeout = max(self._earliest_fence() - time.monotonic(), 0.0)
                await asyncio.wait([call], timeout=None if math.isinf(timeout) else timeout)
                if not call.done():
                    self._fence(time.monotonic())
            states = await call
        finally:
            if not call.done():
                call.cancel()  # a renew is safe to abandon, unlike a claim
        self._apply(contexts, states, sent + self._lease_s)

    def _apply(self, contexts: list[JobContext], states: list[LeaseState], deadline: float) -> None:
        inflight = self._inflight
        for ctx, state in zip(contexts, states, strict=True):
            if ctx._lost or inflight.get(ctx._lease.token) is not ctx:
                continue  # settled or given up while the call was out
            if state is LeaseState.LOST:
                self._lose(ctx, "the store no longer holds the lease")
                continue
            ctx._deadline = deadline
            ctx._confirmed = True
            if state is LeaseState.CANCEL_REQUESTED and not ctx._cancelled and not ctx._settling:
                self._cancel(ctx)

    # -- cancellations ----------------------------------------------------------

    async def _cancellations_loop(self) -> None:
        failures = 0
        while not self.closing:
            stream = None
            try:
                stream = self._source.cancellations()
                async for job_id in stream:
                    failures = 0
                    self._cancel_requested(job_id)
            except Exception as error:
                failures += 1
                log = logger.warning if failures == 1 else logger.debug
                text = error_text(error)
                log(
                    "cancellation stream failed (%d in a row; renewals still report cancels): %s",
                    failures,
                    text,
                    extra={"error": text, "failures": failures},
                )
            else:
                failures += 1
            finally:
                if stream is not None:
                    await _aclose(stream)
            if self.closing:
                return
            await asyncio.sleep(backoff_s(failures, self._settings.max_error_backoff_s))

    def _cancel_requested(self, job_id: str) -> None:
        # A scan, not an index by job id: cancels are rare, and an index would
        # cost every job two dict operations on the hot path.
        for ctx in list(self._inflight.values()):
            if ctx.id == job_id and not (ctx._cancelled or ctx._settling or ctx._lost):
                self._cancel(ctx)


def _fenced(ctx: JobContext) -> bool:
    """Whether a job's local deadline stops it: only a running handler has anything to stop.

    An outcome waiting to be settled is still sent when its deadline passes
    locally: the store applies it if the lease held there, refuses it if not.
    """
    return not (ctx._lost or ctx._settling)


async def _aclose(stream: Any) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is None:
        return
    try:
        await aclose()
    except Exception as error:
        text = error_text(error)
        logger.debug("closing the cancellation stream failed: %s", text, extra={"error": text})

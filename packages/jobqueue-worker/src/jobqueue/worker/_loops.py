"""The worker's claim, settle and requeue loops.

Claims take as many jobs as there are free slots; outcomes are stored in
batches (a group commit: the next batch goes as soon as the previous call
returns); expired leases of dead workers are swept on a timer. A failed call
is retried with a growing pause, so a store or server that is down for a
while costs nothing but the wait.

While the queue is busy (the last claim leased jobs), a settle also claims
as many jobs as its batch frees, on a source that can (``SettleClaimSource``):
one call per batch instead of a settle and a claim. Slots promised to a claim
that is out are reserved in ``InFlight`` so the lanes and the claim loop never
lease more jobs than there are slots. (A settle still out when a stop's grace
ends is cancelled with its lane; the leases its claim made, if any, expire
unconfirmed, their attempts given back, as with a lost claim reply.)
"""

from __future__ import annotations

import asyncio
import dataclasses
import time

from jobqueue.domain import Lease, Outcome, OutcomeKind

from ._context import JobContext
from ._leases import LeaseKeeper, backoff_s
from ._logging import error_text, job_fields, job_label, logger
from ._runner import JobRunner
from ._settings import WorkerSettings
from ._source import JobSource, SettleClaimSource
from ._state import InFlight

SETTLE_LANES = 2
"""Settle calls a worker keeps out at once: two drained a third more jobs a second
than one through the server, three no more than two (docs/benchmarks.md, "The
settle that claims")."""


@dataclasses.dataclass(eq=False)
class Loops:
    """The background loops of a started worker, over the state they share."""

    source: JobSource
    settings: WorkerSettings
    types: tuple[str, ...]
    state: InFlight
    runner: JobRunner
    leases: LeaseKeeper
    claim_wait_ms: int = dataclasses.field(init=False)
    stopping: bool = dataclasses.field(default=False, init=False)
    # Set before the loops are cancelled: a store call may swallow a
    # cancellation (redis-py can), so each loop also checks this after a call.
    closing: bool = dataclasses.field(default=False, init=False)
    # Whether the last claim leased jobs: more are likely due, so the next
    # settle claims too (an idle queue costs one empty claim, then none).
    busy: bool = dataclasses.field(default=False, init=False)
    settle_then_claim: SettleClaimSource | None = dataclasses.field(default=None, init=False)

    def __post_init__(self) -> None:
        # A claim's lease is counted from when the claim was sent, so a claim
        # that waits long in the store eats into it: keep the wait well short.
        self.claim_wait_ms = min(self.settings.claim_wait_ms, self.settings.lease_ms // 4)
        if isinstance(self.source, SettleClaimSource):
            self.settle_then_claim = self.source

    async def claim_loop(self) -> None:
        loop = asyncio.get_running_loop()
        settings = self.settings
        state = self.state
        lease_s = settings.lease_ms / 1000
        failures = 0
        while not self.stopping:
            free = settings.concurrency - len(state.jobs) - state.reserved
            if free <= 0:
                state.slots_freed.clear()
                await state.slots_freed.wait()
                continue
            sent = time.monotonic()
            state.reserved += free
            failed: Exception | None = None
            try:
                leases = await self.source.claim(
                    self.types, limit=free, lease_ms=settings.lease_ms, wait_ms=self.claim_wait_ms
                )
            except Exception as error:
                failed = error
            finally:
                state.reserved -= free
            if failed is not None:
                failures += 1
                _log_call_failed("claim", failed, failures)
                await self._pause(failures)
                continue
            failures = 0
            self.busy = bool(leases)
            if self._launch(leases, sent + lease_s, loop):
                # Let the jobs just launched start before the next claim is
                # written: its Python and its socket write would otherwise
                # come first, on every job's start latency.
                await asyncio.sleep(0)
            if self.stopping:
                return

    def _launch(
        self, leases: list[Lease], deadline: float, loop: asyncio.AbstractEventLoop
    ) -> bool:
        """Run the jobs of a claim, or give them back untried once the worker is stopping."""
        if not leases:
            return False
        state = self.state
        if self.stopping:
            for lease in leases:
                state.queue(
                    Outcome(job_id=lease.job.id, token=lease.token, kind=OutcomeKind.RELEASE)
                )
            return False
        launch = self.runner.launch
        for lease in leases:
            launch(lease, loop, deadline)
        self.leases.claimed()
        return True

    async def flush_loop(self) -> None:
        """Store outcomes in batches, in ``SETTLE_LANES`` lanes of one call at a time.

        Each lane sends what accumulated while it was out, up to its share of
        the slots. A settle that also claims brings the worker its next jobs,
        so with one lane, or one lane taking every outcome, the worker, the
        server and Redis take turns: with two halves, one batch is being
        settled while the jobs of the other run (a third more jobs a second
        through the server, and the share alone 38 % more on the direct path:
        docs/benchmarks.md).
        """
        await asyncio.gather(*(self._flush_lane() for _ in range(SETTLE_LANES)))

    async def _flush_lane(self) -> None:
        state = self.state
        settings = self.settings
        loop = asyncio.get_running_loop()
        lease_s = settings.lease_ms / 1000
        failures = 0
        while not self.closing:
            if not state.outbox:
                state.outbox_ready.clear()
                await state.outbox_ready.wait()
                continue
            # At most a lane's share of the slots: a lane that took every
            # outcome would leave the other idle, and the worker and Redis
            # would take turns instead of working at once.
            share = -(-settings.concurrency // SETTLE_LANES)
            if len(state.outbox) > share:
                batch, state.outbox = state.outbox[:share], state.outbox[share:]
            else:
                batch, state.outbox = state.outbox, []
            want, freed = self._claim_beside(batch)
            leases: list[Lease] = []
            failed: Exception | None = None
            sent = time.monotonic()
            state.reserved += want
            state.freeing += freed
            try:
                if want and self.settle_then_claim is not None:
                    stored, leases = await self.settle_then_claim.settle_then_claim(
                        batch, self.types, limit=want, lease_ms=settings.lease_ms
                    )
                else:
                    stored = await self.source.settle(batch)
            except Exception as error:
                failed = error
            finally:
                state.reserved -= want
                state.freeing -= freed
            if failed is not None:
                if want:
                    state.slot_freed()  # the claim loop may take the slots this claim held
                # Keep the batch: outcomes are safe to send again, a stale one is refused.
                state.outbox[:0] = state.without_lost(batch)
                failures += 1
                _log_call_failed(f"settle of {len(batch)} outcomes", failed, failures)
                await self._pause(failures)
                continue
            failures = 0
            state.unsettled -= len(batch)
            state.settled += len(batch)
            jobs = state.jobs
            for outcome, ok in zip(batch, stored, strict=True):
                ctx = jobs.pop(outcome.token, None)
                if not ok:
                    _log_refused(outcome, ctx)
            if want:
                self.busy = bool(leases)
                self._launch(leases, sent + lease_s, loop)
            if not want or len(state.jobs) + state.reserved < settings.concurrency:
                state.slot_freed()

    def _claim_beside(self, batch: list[Outcome]) -> tuple[int, int]:
        """How many jobs the settle of ``batch`` should also claim, and how many slots it frees.

        It claims for every slot free once the calls out have answered: its
        own batch's, the other lane's, less what the claims out may take. None
        unless the source can, the worker runs on, and the last claim leased
        jobs (an idle queue is left to the claim loop's waits).
        """
        jobs = self.state.jobs
        freed = sum(1 for outcome in batch if outcome.token in jobs)
        if self.settle_then_claim is None or self.stopping or not self.busy:
            return 0, freed
        state = self.state
        free = self.settings.concurrency - len(jobs) + state.freeing + freed - state.reserved
        return max(free, 0), freed

    async def requeue_loop(self) -> None:
        interval_ms = self.settings.requeue_interval_ms
        while not self.closing:
            try:
                # One sweep per interval across every process sharing the store.
                count = await self.source.requeue_expired(limit=1_000, lock_ms=interval_ms * 4 // 5)
            except Exception as error:
                logger.warning(
                    "requeue of expired leases failed: %s",
                    error_text(error),
                    extra={"error": error_text(error)},
                )
            else:
                if count:
                    logger.info(
                        "requeued %d jobs whose leases expired (their workers died)",
                        count,
                        extra={"count": count},
                    )
            await asyncio.sleep(interval_ms / 1000)

    async def _pause(self, failures: int) -> None:
        await asyncio.sleep(backoff_s(failures, self.settings.max_error_backoff_s))


def _log_call_failed(call: str, error: Exception, failures: int) -> None:
    text = error_text(error)
    logger.warning(
        "%s failed (%d in a row), retrying: %s",
        call,
        failures,
        text,
        extra={"error": text, "failures": failures},
    )


def _log_refused(outcome: Outcome, ctx: JobContext | None) -> None:
    if ctx is not None:
        label, fields = job_label(ctx), job_fields(ctx)
    else:
        label, fields = f"job {outcome.job_id}", {"job_id": outcome.job_id}  # released untried
    fields["outcome"] = outcome.kind.value
    logger.info(
        "%s: outcome %s refused, the lease was no longer held",
        label,
        outcome.kind.value,
        extra=fields,
    )

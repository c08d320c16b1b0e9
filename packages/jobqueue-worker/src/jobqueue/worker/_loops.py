"""The worker's claim, settle and requeue loops.

Claims take as many jobs as there are free slots; outcomes are stored in
batches (a group commit: the next batch goes as soon as the previous call
returns); expired leases of dead workers are swept on a timer. A failed call
is retried with a growing pause, so a store or server that is down for a
while costs nothing but the wait.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time

from jobqueue.domain import Outcome, OutcomeKind

from ._context import JobContext
from ._leases import LeaseKeeper, backoff_s
from ._logging import error_text, job_fields, job_label, logger
from ._runner import JobRunner
from ._settings import WorkerSettings
from ._source import JobSource
from ._state import InFlight


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

    def __post_init__(self) -> None:
        # A claim's lease is counted from when the claim was sent, so a claim
        # that waits long in the store eats into it: keep the wait well short.
        self.claim_wait_ms = min(self.settings.claim_wait_ms, self.settings.lease_ms // 4)

    async def claim_loop(self) -> None:
        loop = asyncio.get_running_loop()
        settings = self.settings
        state = self.state
        launch = self.runner.launch
        lease_s = settings.lease_ms / 1000
        failures = 0
        while not self.stopping:
            free = settings.concurrency - len(state.jobs)
            if free <= 0:
                state.slots_freed.clear()
                await state.slots_freed.wait()
                continue
            sent = time.monotonic()
            try:
                leases = await self.source.claim(
                    self.types, limit=free, lease_ms=settings.lease_ms, wait_ms=self.claim_wait_ms
                )
            except Exception as error:
                failures += 1
                _log_call_failed("claim", error, failures)
                await self._pause(failures)
                continue
            failures = 0
            if self.stopping:
                for lease in leases:
                    state.queue(
                        Outcome(job_id=lease.job.id, token=lease.token, kind=OutcomeKind.RELEASE)
                    )
                return
            if leases:
                deadline = sent + lease_s
                for lease in leases:
                    launch(lease, loop, deadline)
                self.leases.claimed()
                # Let the jobs just launched start before the next claim is
                # written: its Python and its socket write would otherwise
                # come first, on every job's start latency.
                await asyncio.sleep(0)

    async def flush_loop(self) -> None:
        """Store outcomes in batches: whatever accumulated while the last call was out."""
        state = self.state
        failures = 0
        while not self.closing:
            if not state.outbox:
                state.outbox_ready.clear()
                await state.outbox_ready.wait()
                continue
            batch, state.outbox = state.outbox, []
            try:
                stored = await self.source.settle(batch)
            except Exception as error:
                # Keep the batch: outcomes are safe to send again, a stale one is refused.
                state.outbox[:0] = state.without_lost(batch)
                failures += 1
                _log_call_failed(f"settle of {len(batch)} outcomes", error, failures)
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
            state.slot_freed()

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

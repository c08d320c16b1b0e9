"""Use cases for workers: claim, settle and renew, the same on every path.

The direct path (a worker in-process with the store) and the server's
WorkerService both go through here, so a rule such as the result limit holds
on both, and an outcome the rules refuse fails that one job instead of
holding back the batch it travelled in.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import replace

from ._job import Lease, LeaseState, Outcome, OutcomeKind
from ._ports import JobStore
from ._validation import MAX_ERROR_LENGTH, Limits, result_too_large, truncate_error, validate_type

MAX_RETRY_DELAY_MS = 365 * 24 * 3600 * 1000
"""The longest retry delay a worker may ask for: a year."""


class LeaseService:
    """Claim, settle and renew leases on a store, with each outcome judged on its own."""

    def __init__(self, store: JobStore, *, limits: Limits | None = None) -> None:
        self._store = store
        self._limits = limits or Limits()

    @property
    def store(self) -> JobStore:
        return self._store

    @property
    def limits(self) -> Limits:
        return self._limits

    async def claim(
        self, types: Sequence[str], *, limit: int, lease_ms: int, wait_ms: int = 0
    ) -> list[Lease]:
        unique = [validate_type(job_type) for job_type in dict.fromkeys(types)]
        return await self._store.claim(unique, limit=limit, lease_ms=lease_ms, wait_ms=wait_ms)

    async def settle(self, outcomes: Sequence[Outcome]) -> list[bool]:
        """Apply each outcome; one the rules refuse becomes that job's FAIL, with the reason."""
        return await self._store.settle([self.judge(outcome) for outcome in outcomes])

    def judge(self, outcome: Outcome) -> Outcome:
        """The outcome as the store should apply it.

        A result over the limit fails the job (permanently: the same handler
        would produce it again); a retry delay is clamped to ``[0, a year]``;
        errors are truncated.
        """
        too_large = result_too_large(outcome.result, self._limits)
        if too_large is not None:
            return Outcome(
                job_id=outcome.job_id, token=outcome.token, kind=OutcomeKind.FAIL, error=too_large
            )
        delay = outcome.retry_delay_ms
        if delay is not None and not 0 <= delay <= MAX_RETRY_DELAY_MS:
            outcome = replace(outcome, retry_delay_ms=min(max(delay, 0), MAX_RETRY_DELAY_MS))
        if outcome.error is not None and len(outcome.error) > MAX_ERROR_LENGTH:
            outcome = replace(outcome, error=truncate_error(outcome.error))
        return outcome

    async def renew(self, leases: Sequence[tuple[str, str]], *, lease_ms: int) -> list[LeaseState]:
        return await self._store.renew(leases, lease_ms=lease_ms)

    async def requeue_expired(self, *, limit: int = 1_000, lock_ms: int = 0) -> int:
        return await self._store.requeue_expired(limit=limit, lock_ms=lock_ms)

    def cancellations(self) -> AsyncIterator[str]:
        return self._store.cancellations()

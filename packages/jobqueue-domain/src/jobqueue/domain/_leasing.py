"""Use cases for workers: claim, settle and renew, the same on every path.

The direct path (a worker in-process with the store) and the server's
WorkerService both go through here, so every rule on a claim (its types, how
many jobs, how long a lease, how long to wait), on an outcome (its id and
token, the result limit, the retry delay, the error's length) and on a
renewal holds on both. A transport only maps its messages to these calls.
An outcome the rules refuse fails or refuses that one job instead of holding
back the batch it travelled in.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace

from ._clock import SystemClock
from ._errors import InvalidJob, StoreUnavailable
from ._job import Lease, LeaseState, Outcome, OutcomeKind
from ._ports import Clock, JobStore
from ._validation import (
    MAX_ERROR_LENGTH,
    Limits,
    result_too_large,
    truncate_error,
    validate_job_id,
    validate_type,
)

_log = logging.getLogger(__name__)

MAX_RETRY_DELAY_MS = 365 * 24 * 3600 * 1000
"""The longest retry delay a worker may ask for: a year."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaseRules:
    """How many, how long: the bounds a deployment sets on claims and leases.

    Lease durations are bounded so that a typo cannot park a job for a year
    (or lose it to a lease that expires before the handler starts); a claim
    waits at most ``max_claim_wait_ms`` for a due job, and names at most
    ``max_claim_types`` types, since each one costs the store a lookup.
    A lease of 0 asks for ``default_lease_ms``.
    """

    default_lease_ms: int = 30_000
    min_lease_ms: int = 100
    max_lease_ms: int = 3_600_000
    max_claim_wait_ms: int = 30_000
    max_claim_jobs: int = 1_000
    max_claim_types: int = 1_000

    def __post_init__(self) -> None:
        if not 0 < self.min_lease_ms <= self.default_lease_ms <= self.max_lease_ms:
            raise ValueError(
                "default_lease_ms must lie between min_lease_ms (positive) and max_lease_ms"
            )
        if self.max_claim_wait_ms < 0:
            raise ValueError("max_claim_wait_ms must not be negative")
        if self.max_claim_jobs < 1 or self.max_claim_types < 1:
            raise ValueError("max_claim_jobs and max_claim_types must be at least 1")


class LeaseService:
    """Claim, settle and renew leases on a store, with each outcome judged on its own.

    Args:
        store: the store the leases live in.
        limits: the size limits outcomes are judged by (the result limit,
            the batch size).
        rules: the bounds on claims and lease durations.
        clock: used only to turn an old worker's absolute retry time into a
            delay (``delay_until``); the store keeps its own time.
    """

    def __init__(
        self,
        store: JobStore,
        *,
        limits: Limits | None = None,
        rules: LeaseRules | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._store = store
        self._limits = limits or Limits()
        self._rules = rules or LeaseRules()
        self._clock = clock or SystemClock()

    @property
    def store(self) -> JobStore:
        return self._store

    @property
    def limits(self) -> Limits:
        return self._limits

    @property
    def rules(self) -> LeaseRules:
        return self._rules

    async def claim(
        self,
        types: Sequence[str],
        *,
        limit: int,
        lease_ms: int = 0,
        wait_ms: int = 0,
        max_jobs: int | None = None,
        wait_budget_ms: int | None = None,
    ) -> list[Lease]:
        """Lease up to ``limit`` due jobs of ``types``, waiting up to ``wait_ms`` for one.

        ``limit`` 0 means one job; it is capped by the rules and by
        ``max_jobs``, a transport's own bound (what surely fits in one
        response). ``wait_budget_ms`` is how long the caller can still wait
        (what is left of its deadline): a claim that outlived its caller would
        lease jobs nobody takes. Raises ``InvalidJob`` naming the field at fault.
        """
        unique = self.claim_types(types)
        limit = self._claim_limit(limit, max_jobs)
        lease_ms = self.lease_ms(lease_ms)
        if wait_ms < 0:
            raise InvalidJob("wait_ms", "must not be negative")
        wait_ms = min(wait_ms, self._rules.max_claim_wait_ms)
        if wait_budget_ms is not None:
            wait_ms = max(0, min(wait_ms, wait_budget_ms))
        return await self._store.claim(unique, limit=limit, lease_ms=lease_ms, wait_ms=wait_ms)

    async def settle_then_claim(
        self,
        outcomes: Sequence[Outcome | None],
        types: Sequence[str],
        *,
        limit: int,
        lease_ms: int = 0,
        max_jobs: int | None = None,
    ) -> tuple[list[bool], list[Lease]]:
        """``settle``, then a ``claim`` of up to ``limit`` jobs that does not wait.

        A busy worker settles a batch and at once claims as many jobs as the
        batch freed slots: one call instead of two, which through the server
        is one gRPC call fewer per batch (the per-call cost is most of what a
        drained job costs there, docs/benchmarks.md). The claim's arguments are
        checked before anything is settled, so a bad claim changes nothing. A
        claim that fails after the settle succeeded (the store became
        unavailable) returns no leases rather than failing the call: the
        settle's verdicts must reach the worker, whose own next claim then
        meets the failure.
        """
        unique = self.claim_types(types)
        limit = self._claim_limit(limit, max_jobs)
        lease_ms = self.lease_ms(lease_ms)
        accepted = await self.settle(outcomes)
        try:
            leases = await self._store.claim(unique, limit=limit, lease_ms=lease_ms, wait_ms=0)
        except StoreUnavailable as error:
            _log.warning("the claim after a settle failed, no jobs leased: %s", error)
            leases = []
        return accepted, leases

    def _claim_limit(self, limit: int, max_jobs: int | None) -> int:
        """How many jobs a claim may lease: 0 means one, capped by the rules and ``max_jobs``."""
        if limit < 0:
            raise InvalidJob("max_jobs", "must not be negative")
        cap = self._rules.max_claim_jobs
        if max_jobs is not None:
            cap = max(1, min(cap, max_jobs))
        return min(max(limit, 1), cap)

    def claim_types(self, types: Sequence[str]) -> list[str]:
        """The distinct types of a claim, in order; each checked, at least one, not too many."""
        unique = list(dict.fromkeys(types))
        if not unique:
            raise InvalidJob("types", "name at least one job type")
        if len(unique) > self._rules.max_claim_types:
            raise InvalidJob("types", f"name at most {self._rules.max_claim_types} job types")
        for index, job_type in enumerate(unique):
            try:
                validate_type(job_type)
            except InvalidJob as error:
                raise InvalidJob(f"types[{index}]", error.message) from None
        return unique

    def lease_ms(self, requested: int) -> int:
        """The lease duration to grant: 0 means the default, others must lie within bounds."""
        rules = self._rules
        if requested == 0:
            return rules.default_lease_ms
        if not rules.min_lease_ms <= requested <= rules.max_lease_ms:
            raise InvalidJob(
                "lease_ms",
                f"must be between {rules.min_lease_ms} and {rules.max_lease_ms} (0: default)",
            )
        return requested

    async def settle(self, outcomes: Sequence[Outcome | None]) -> list[bool]:
        """Apply each outcome; whether each was applied, in order.

        An outcome with a malformed id or an empty token is refused alone
        (False), as is ``None``, which stands for an entry its transport could
        not read (an unknown kind); the rest of the batch still settles. An
        outcome the rules refuse becomes that job's FAIL, with the reason.
        Raises ``InvalidJob`` only for a batch over ``Limits.max_batch_size``.
        """
        self._check_batch("outcomes", len(outcomes))
        judged: list[Outcome | None] = []
        for index, outcome in enumerate(outcomes):
            try:
                judged.append(None if outcome is None else self._checked(outcome, index))
            except InvalidJob as error:
                _log.info("settle: refused %s", error)
                judged.append(None)
        valid = [outcome for outcome in judged if outcome is not None]
        applied = iter(await self._store.settle(valid) if valid else [])
        return [outcome is not None and next(applied) for outcome in judged]

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

    def delay_until(self, retry_at_ms: int) -> int:
        """An absolute retry time as a delay from this service's now; a past time means now.

        For old workers that send ``retry_at_ms`` from their own clock: the
        store only takes delays, so a skewed clock moves a retry by its skew
        once, never by the store's.
        """
        return max(0, retry_at_ms - self._clock.now_ms())

    async def renew(self, leases: Sequence[tuple[str, str]], *, lease_ms: int) -> list[LeaseState]:
        """Extend each ``(job_id, token)`` lease; its state tells whether to go on.

        Raises ``InvalidJob`` naming the entry when an id or token is
        malformed (nothing is renewed then), or for a batch over the limit.
        """
        self._check_batch("leases", len(leases))
        checked: list[tuple[str, str]] = []
        for index, (job_id, token) in enumerate(leases):
            try:
                job_id = validate_job_id(job_id)
            except InvalidJob as error:
                raise InvalidJob(f"leases[{index}].job_id", error.message) from None
            if not token:
                raise InvalidJob(f"leases[{index}].token", "must not be empty")
            checked.append((job_id, token))
        lease_ms = self.lease_ms(lease_ms)
        return await self._store.renew(checked, lease_ms=lease_ms) if checked else []

    async def release(self, leases: Sequence[Lease]) -> list[bool]:
        """Hand leases back untried: the jobs are due again, their attempt given back.

        The leases came from ``claim``, so they need no checks, and a claim's
        leases are never too many to hand back in one call.
        """
        outcomes = [
            Outcome(job_id=lease.job.id, token=lease.token, kind=OutcomeKind.RELEASE)
            for lease in leases
        ]
        return await self._store.settle(outcomes) if outcomes else []

    async def requeue_expired(self, *, limit: int = 1_000, lock_ms: int = 0) -> int:
        return await self._store.requeue_expired(limit=limit, lock_ms=lock_ms)

    def cancellations(self) -> AsyncIterator[str]:
        return self._store.cancellations()

    def _checked(self, outcome: Outcome, index: int) -> Outcome:
        where = f"outcomes[{index}]"
        try:
            job_id = validate_job_id(outcome.job_id)
        except InvalidJob as error:
            raise InvalidJob(f"{where}.job_id", error.message) from None
        if not outcome.token:
            raise InvalidJob(f"{where}.token", "must not be empty")
        if job_id != outcome.job_id:
            outcome = replace(outcome, job_id=job_id)
        return self.judge(outcome)

    def _check_batch(self, field: str, size: int) -> None:
        if size > self._limits.max_batch_size:
            raise InvalidJob(field, f"a batch holds at most {self._limits.max_batch_size} items")

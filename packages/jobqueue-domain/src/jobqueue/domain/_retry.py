"""When a failed job runs again: capped exponential backoff with full jitter."""

from __future__ import annotations

import random
from dataclasses import dataclass

from ._job import Lease, Outcome, OutcomeKind
from ._transitions import DEFAULT_MAX_ATTEMPTS, effective_max_attempts
from ._validation import truncate_error


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Delay before attempt ``n + 1`` after attempt ``n`` failed.

    The ceiling grows as ``base_ms * factor ** (n - 1)`` up to ``cap_ms``; with
    full jitter the delay is uniform in ``[0, ceiling]``, which spreads a burst
    of failures (a dependency went down) instead of retrying them in lockstep.
    With the defaults, ten attempts span at most about seventeen minutes.
    """

    base_ms: int = 2_000
    factor: float = 2.0
    cap_ms: int = 600_000
    jitter: bool = True

    def ceiling_ms(self, attempt: int) -> int:
        exponent = max(attempt - 1, 0)
        # Bound the exponent first: factor ** 2000 overflows a float.
        if exponent > 64:
            return self.cap_ms
        return int(min(self.cap_ms, self.base_ms * self.factor**exponent))

    def delay_ms(self, attempt: int, rng: random.Random | None = None) -> int:
        ceiling = self.ceiling_ms(attempt)
        if not self.jitter:
            return ceiling
        return (rng or random).randint(0, ceiling)


DEFAULT_RETRY_POLICY = RetryPolicy()


def failure_outcome(
    lease: Lease,
    error: str,
    *,
    permanent: bool = False,
    policy: RetryPolicy = DEFAULT_RETRY_POLICY,
    default_max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    rng: random.Random | None = None,
) -> Outcome:
    """Decide between another attempt and FAILED for a job whose handler failed.

    The retry is a delay, not a time: the store adds it to its own clock.
    """
    job = lease.job
    error = truncate_error(error)
    if permanent or job.attempts >= effective_max_attempts(job, default_max_attempts):
        return Outcome(job_id=job.id, token=lease.token, kind=OutcomeKind.FAIL, error=error)
    return Outcome(
        job_id=job.id,
        token=lease.token,
        kind=OutcomeKind.RETRY,
        error=error,
        retry_delay_ms=policy.delay_ms(job.attempts, rng),
    )

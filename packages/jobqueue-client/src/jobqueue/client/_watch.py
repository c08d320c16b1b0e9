"""Following a job over the WatchJob stream: deadline, resumption and backoff, for both clients.

The two clients differ only in how they iterate a stream and sleep; what to
do when a stream fails or ends is decided here once.
"""

from __future__ import annotations

from datetime import timedelta

import grpc

from ._errors import ServerUnavailable, WaitTimeout, error_from_rpc, status_of
from ._models import Job
from ._retry import RetryPolicy, is_retryable


def timeout_seconds(timeout: float | timedelta | None) -> float | None:
    if timeout is None:
        return None
    seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else float(timeout)
    if seconds < 0:
        raise ValueError("timeout must not be negative")
    return seconds


class WatchState:
    """What one ``watch`` has seen so far, and the decisions that follow from it."""

    def __init__(
        self, job_id: str, retry: RetryPolicy, timeout_s: float | None, now: float
    ) -> None:
        self.job_id = job_id
        self.retry = retry
        self.deadline = None if timeout_s is None else now + timeout_s
        self.last: Job | None = None
        self.failures = 0

    def remaining(self, now: float) -> float | None:
        """The deadline of the next stream; raises WaitTimeout when time is up."""
        if self.deadline is None:
            return None
        left = self.deadline - now
        if left <= 0:
            raise WaitTimeout(self.job_id, self.last)
        return left

    def seen(self, job: Job) -> Job:
        self.last = job
        # The stream works again: a later outage gets the whole retry budget.
        self.failures = 0
        return job

    def failed(self, error: grpc.RpcError, now: float) -> float:
        """The pause before resuming after ``error``, or the exception to raise instead."""
        code, _ = status_of(error)
        if code is grpc.StatusCode.DEADLINE_EXCEEDED and self.deadline is not None:
            # The stream's deadline is the caller's timeout: time is up.
            raise WaitTimeout(self.job_id, self.last) from error
        if is_retryable(error) and self.failures < self.retry.max_retries:
            return self._pause(now)
        raise error_from_rpc(error, job_id=self.job_id) from error

    def stream_ended(self, now: float) -> float:
        """The server closed the stream before a terminal state (it may be shutting down)."""
        if self.failures >= self.retry.max_retries:
            raise ServerUnavailable(
                f"the server kept closing the watch of job {self.job_id} before it finished"
            )
        return self._pause(now)

    def _pause(self, now: float) -> float:
        self.failures += 1
        pause = self.retry.backoff_s(self.failures)
        if self.deadline is not None:
            pause = max(0.0, min(pause, self.deadline - now))
        return pause

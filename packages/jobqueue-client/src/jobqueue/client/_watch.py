"""Following a job over the WatchJob stream: deadline, resumption and backoff, for both clients.

The two clients differ only in how they iterate a stream and sleep; what to
do when a stream fails or ends is decided here once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from typing import Any, TypeVar

import grpc

from mpataki.jobqueue.v1 import jobqueue_pb2 as pb

from ._channel import Connection
from ._convert import job_from_proto
from ._errors import ServerUnavailable, WaitTimeout, error_from_rpc, status_of
from ._models import Job
from ._renamed import renamed
from ._retry import is_retryable

_Call = TypeVar("_Call")


def timeout_seconds(timeout: float | timedelta | None) -> float | None:
    if timeout is None:
        return None
    seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else float(timeout)
    if seconds < 0:
        raise ValueError("timeout must not be negative")
    return seconds


def watch_timeout_s(
    timeout_s: float | timedelta | None, timeout: float | timedelta | None
) -> float | None:
    """``watch``'s and ``wait``'s timeout in seconds, from the new name or the deprecated one."""
    # stacklevel: renamed <- here <- watch or wait <- the user's call.
    chosen = renamed(
        "timeout", timeout, "timeout_s", timeout_s, given=timeout_s is not None, stacklevel=4
    )
    return timeout_seconds(chosen)


def last_state(job_id: str, states: Iterable[Job]) -> Job:
    """The terminal state that ends a watch (``wait`` of the blocking client)."""
    last: Job | None = None
    for job in states:
        last = job
    if last is None:  # a watch only ends normally after a terminal state
        raise WaitTimeout(job_id)
    return last


class WatchState:
    """What one ``watch`` has seen so far, and the decisions that follow from it.

    Both clients drive it the same way: streams from ``open`` until
    ``finished``, each response through ``seen``; after a stream fails or ends
    early, a pause as long as ``failed`` or ``stream_ended`` say.
    """

    def __init__(
        self,
        job_id: str,
        connection: Connection,
        timeout_s: float | None,
        now: float,
    ) -> None:
        self.job_id = job_id
        self.retry = connection.retry
        self.metadata = connection.metadata
        self.request = pb.WatchJobRequest(id=job_id)
        self.deadline = None if timeout_s is None else now + timeout_s
        self.last: Job | None = None
        self.failures = 0
        self.finished = False

    def open(self, watch_job: Callable[..., _Call], now: float) -> _Call:
        """The next stream, by the stub's ``WatchJob``, with what is left of the timeout."""
        return watch_job(self.request, timeout=self.remaining(now), metadata=self.metadata)

    def follow(self, responses: Iterable[Any]) -> Iterator[Job]:
        """The jobs of a blocking stream, up to the terminal one."""
        for response in responses:
            yield self.seen(response)
            if self.finished:
                return

    def remaining(self, now: float) -> float | None:
        """The deadline of the next stream; raises WaitTimeout when time is up."""
        if self.deadline is None:
            return None
        left = self.deadline - now
        if left <= 0:
            raise WaitTimeout(self.job_id, self.last)
        return left

    def seen(self, response: Any) -> Job:
        """The job in one WatchJob response; ``finished`` once it is terminal."""
        job = job_from_proto(response.job)
        self.last = job
        self.finished = job.is_finished
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
        """The pause after a stream ended: none once finished, else the server closed it early.

        A server closes the stream early when it shuts down, for example.
        """
        if self.finished:
            return 0.0
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

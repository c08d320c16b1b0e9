"""The worker's tunables, in one typed settings object."""

from __future__ import annotations

from dataclasses import dataclass

from jobqueue.domain import DEFAULT_MAX_ATTEMPTS, DEFAULT_RETRY_POLICY, RetryPolicy


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerSettings:
    """How a ``Worker`` runs its jobs.

    Attributes:
        concurrency: jobs in flight at once (running, or finished and waiting
            for their outcome to be stored). Claims never take more.
        lease_ms: how long a claimed job stays ours without a heartbeat. A
            worker killed with SIGKILL delays its jobs by at most this much.
        heartbeat_interval_ms: how often all leases are renewed in one call;
            None means a third of ``lease_ms``, so two heartbeats may fail
            before a lease runs out.
        claim_wait_ms: how long one idle claim waits in the store for a job to
            become due. The store answers as soon as one is, so this bounds only
            how long ``stop`` waits for an idle claim to return.
        requeue_interval_ms: how often this worker hands expired leases (of dead
            workers) back to the queue; 0 disables it.
        shutdown_grace_s: how long ``stop`` lets running jobs finish before it
            cancels them and releases them to other workers.
        thread_pool_size: threads for plain ``def`` handlers; None means
            ``min(32, concurrency)``.
        default_max_attempts: attempts of a job whose producer and handler both
            left the number open.
        default_retry: backoff of handlers registered without their own policy.
        default_timeout_s: timeout of handlers registered without their own; None
            means no timeout.
        max_error_backoff_s: the longest pause between retries of a failed call
            to the source (its backend is down); pauses grow up to it.
    """

    concurrency: int = 100
    lease_ms: int = 30_000
    heartbeat_interval_ms: int | None = None
    claim_wait_ms: int = 1_000
    requeue_interval_ms: int = 5_000
    shutdown_grace_s: float = 10.0
    thread_pool_size: int | None = None
    default_max_attempts: int = DEFAULT_MAX_ATTEMPTS
    default_retry: RetryPolicy = DEFAULT_RETRY_POLICY
    default_timeout_s: float | None = None
    max_error_backoff_s: float = 2.0

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.lease_ms < 10:
            raise ValueError("lease_ms must be at least 10")
        if self.heartbeat_interval_ms is not None and not (
            0 < self.heartbeat_interval_ms < self.lease_ms
        ):
            raise ValueError("heartbeat_interval_ms must be positive and shorter than lease_ms")
        if self.claim_wait_ms < 0 or self.requeue_interval_ms < 0:
            raise ValueError("claim_wait_ms and requeue_interval_ms must not be negative")
        if self.shutdown_grace_s < 0:
            raise ValueError("shutdown_grace_s must not be negative")
        if self.default_max_attempts < 1:
            raise ValueError("default_max_attempts must be at least 1")

    @property
    def heartbeat_s(self) -> float:
        interval = self.heartbeat_interval_ms or max(self.lease_ms // 3, 1)
        return interval / 1000

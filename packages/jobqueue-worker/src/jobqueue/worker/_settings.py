"""The worker's tunables, in one typed settings object."""

from __future__ import annotations

from dataclasses import dataclass

from jobqueue.domain import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_RETRY_POLICY,
    MAX_WORKER_TTL_MS,
    MIN_WORKER_TTL_MS,
    LeaseRules,
    Limits,
    RetryPolicy,
)

_DEFAULT_MAX_RESULT_BYTES = Limits().max_result_bytes
MIN_LEASE_MS = LeaseRules().min_lease_ms
"""The shortest lease ``LeaseService`` grants by default, on the direct path and the server's."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerSettings:
    """How a ``Worker`` runs its jobs.

    Attributes:
        concurrency: jobs in flight at once (running, or finished and waiting
            for their outcome to be stored). Claims never take more.
        lease_ms: how long a claimed job stays ours without a heartbeat. A
            worker killed with SIGKILL delays its jobs by at most this much.
            At least 100 ms, the domain's shortest lease on either path.
        heartbeat_interval_ms: how often all leases are renewed in one call;
            None means a third of ``lease_ms``, so two heartbeats may fail
            before a lease runs out.
        confirm_after_ms: how long a freshly claimed job may run before its
            lease is confirmed by a renew of just the fresh leases. The store
            counts an attempt only once its lease is confirmed (by a renew or
            the settle), so a claim whose reply was lost costs the job nothing;
            jobs that finish sooner are confirmed by their settle, at no extra
            round trip.
        claim_wait_ms: how long one idle claim waits in the store for a job to
            become due. The store answers as soon as one is, so this bounds only
            how long ``stop`` waits for an idle claim to return. At most a
            quarter of ``lease_ms`` is used: a lease is counted from when its
            claim was sent, so a long wait would eat into it.
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
        max_result_bytes: the largest result a handler may return; a larger
            one fails that job alone, at once and for good (the same limit as
            the store's and the server's, ``Limits.max_result_bytes``).
        store_traceback: also store a failed attempt's traceback in the job's
            ``last_error``. Off by default: clients of the API read that text,
            and a traceback shows the worker machine's paths and code; the
            traceback always goes to the worker's log.
        presence_ttl_ms: how long this worker stays listed (``ListWorkers``,
            the stats' live-worker counts) without a heartbeat; it sends one
            every third of it, and a stopping worker leaves at once. 1 s to
            10 min, or 0 to not register at all.
    """

    concurrency: int = 100
    lease_ms: int = 30_000
    heartbeat_interval_ms: int | None = None
    confirm_after_ms: int = 100
    claim_wait_ms: int = 1_000
    requeue_interval_ms: int = 5_000
    shutdown_grace_s: float = 10.0
    thread_pool_size: int | None = None
    default_max_attempts: int = DEFAULT_MAX_ATTEMPTS
    default_retry: RetryPolicy = DEFAULT_RETRY_POLICY
    default_timeout_s: float | None = None
    max_error_backoff_s: float = 2.0
    max_result_bytes: int = _DEFAULT_MAX_RESULT_BYTES
    store_traceback: bool = False
    presence_ttl_ms: int = 30_000

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.lease_ms < MIN_LEASE_MS:
            raise ValueError(
                f"lease_ms must be at least {MIN_LEASE_MS} (the store refuses shorter leases)"
            )
        if self.presence_ttl_ms != 0 and not (
            MIN_WORKER_TTL_MS <= self.presence_ttl_ms <= MAX_WORKER_TTL_MS
        ):
            raise ValueError(
                f"presence_ttl_ms must be 0 (off) or between {MIN_WORKER_TTL_MS} "
                f"and {MAX_WORKER_TTL_MS}"
            )
        if self.heartbeat_interval_ms is not None and not (
            0 < self.heartbeat_interval_ms < self.lease_ms
        ):
            raise ValueError("heartbeat_interval_ms must be positive and shorter than lease_ms")
        if self.claim_wait_ms < 0 or self.requeue_interval_ms < 0 or self.confirm_after_ms < 0:
            raise ValueError(
                "claim_wait_ms, requeue_interval_ms and confirm_after_ms must not be negative"
            )
        if self.shutdown_grace_s < 0:
            raise ValueError("shutdown_grace_s must not be negative")
        if self.default_max_attempts < 1:
            raise ValueError("default_max_attempts must be at least 1")
        if self.max_result_bytes < 0:
            raise ValueError("max_result_bytes must not be negative")

    @property
    def heartbeat_s(self) -> float:
        return self._heartbeat_ms / 1000

    @property
    def fence_margin_s(self) -> float:
        """How long before a lease's local deadline the worker gives the job up.

        Renewals that keep failing end in the store handing the job to another
        worker at the deadline, by the store's clock. The worker measures the
        deadline on its monotonic clock from when the claim or renew was *sent*
        (the store's deadline can only be later), and stops the handler this
        much earlier still: a tenth of the lease, at least 500 ms, but less
        than the time between heartbeats and the time after the next heartbeat
        (so one failed heartbeat alone never gives a job up).
        """
        heartbeat = self._heartbeat_ms
        margin = min(max(self.lease_ms / 10, 500), heartbeat / 2, (self.lease_ms - heartbeat) / 2)
        return margin / 1000

    @property
    def _heartbeat_ms(self) -> int:
        return self.heartbeat_interval_ms or max(self.lease_ms // 3, 1)

"""Transport settings of the gRPC server, apart from the domain's ``Limits``."""

from __future__ import annotations

from dataclasses import dataclass

from jobqueue.domain import LeaseRules

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerOptions:
    """How big, how long and how often, on the wire.

    ``max_message_bytes`` bounds every request and response (gRPC's own default
    is 4 MiB for receiving). One job is bounded by the domain's payload limit
    (1 MiB by default), so the message limit is what bounds a batch: an
    EnqueueJobs call must fit in it, a ListJobs page is shrunk until it fits, and
    a claim hands out at most as many jobs as surely fit.

    ``max_claim_wait_ms`` caps how long a ClaimJobs call may hold a worker's
    request open waiting for a due job; lease durations are bounded so that a
    typo cannot park a job for a year. Those bounds are the domain's rules
    (``LeaseRules``, applied by ``LeaseService``): ``lease_rules()`` hands
    them over, so the direct path and the server check claims the same way.
    """

    max_message_bytes: int = 64 * MIB
    max_claim_wait_ms: int = 30_000
    max_claim_jobs: int = 1_000
    default_lease_ms: int = 30_000
    min_lease_ms: int = 100
    max_lease_ms: int = 3_600_000
    health_check_interval_s: float = 1.0
    health_check_timeout_s: float = 1.0

    def __post_init__(self) -> None:
        if self.max_message_bytes < MIB:
            raise ValueError("max_message_bytes must be at least 1 MiB")
        if not self.min_lease_ms <= self.default_lease_ms <= self.max_lease_ms:
            raise ValueError("default_lease_ms must lie between min_lease_ms and max_lease_ms")

    def lease_rules(self) -> LeaseRules:
        """The claim and lease bounds of these options, as the domain's ``LeaseRules``."""
        return LeaseRules(
            default_lease_ms=self.default_lease_ms,
            min_lease_ms=self.min_lease_ms,
            max_lease_ms=self.max_lease_ms,
            max_claim_wait_ms=self.max_claim_wait_ms,
            max_claim_jobs=self.max_claim_jobs,
        )

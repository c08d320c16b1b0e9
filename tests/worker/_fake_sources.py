"""Job sources that wrap a real one to shorten renewals, count round trips or fail on cue.

Fakes at the port (``JobSource``), never patched internals: each forwards to the
harness's real source and changes one thing a test needs to provoke.
"""

from __future__ import annotations

from collections.abc import Sequence

from jobqueue.domain import Lease, LeaseState, Outcome
from jobqueue.worker import (
    JobSource,
    SourceUnavailable,
)

from .conftest import ForwardingSource


class ShortenedRenewal(ForwardingSource):
    """Renews for 100 ms (the server's least) while ``shorten``: leases lapse behind the worker."""

    def __init__(self, inner: JobSource) -> None:
        super().__init__(inner)
        self.shorten = False
        self.lost = False
        self.settled: list[Outcome] = []

    async def renew(self, leases: Sequence[tuple[str, str]], *, lease_ms: int) -> list[LeaseState]:
        if self.shorten:
            lease_ms = 100
        states = await super().renew(leases, lease_ms=lease_ms)
        self.lost = self.lost or LeaseState.LOST in states
        return states

    async def settle(self, outcomes: Sequence[Outcome]) -> list[bool]:
        self.settled.extend(outcomes)
        return await super().settle(outcomes)


class CountingSource(ForwardingSource):
    """Counts round trips, to show that many jobs share one call."""

    def __init__(self, inner: JobSource) -> None:
        super().__init__(inner)
        self.claim_calls = 0
        self.settle_calls = 0
        self.settled = 0

    async def claim(
        self, types: Sequence[str], *, limit: int, lease_ms: int, wait_ms: int
    ) -> list[Lease]:
        leases = await super().claim(types, limit=limit, lease_ms=lease_ms, wait_ms=wait_ms)
        if leases:
            self.claim_calls += 1
        return leases

    async def settle(self, outcomes: Sequence[Outcome]) -> list[bool]:
        self.settle_calls += 1
        self.settled += len(outcomes)
        return await super().settle(outcomes)


class FlakySource(ForwardingSource):
    """Fails the first ``failures`` claims and settles, as a backend that is restarting."""

    def __init__(self, inner: JobSource, *, failures: int) -> None:
        super().__init__(inner)
        self.failures = failures
        self.failed_claims = 0
        self.failed_settles = 0

    async def claim(
        self, types: Sequence[str], *, limit: int, lease_ms: int, wait_ms: int
    ) -> list[Lease]:
        if self.failed_claims < self.failures:
            self.failed_claims += 1
            raise SourceUnavailable("connection refused")
        return await super().claim(types, limit=limit, lease_ms=lease_ms, wait_ms=wait_ms)

    async def settle(self, outcomes: Sequence[Outcome]) -> list[bool]:
        if self.failed_settles < self.failures:
            self.failed_settles += 1
            raise SourceUnavailable("connection refused")
        return await super().settle(outcomes)

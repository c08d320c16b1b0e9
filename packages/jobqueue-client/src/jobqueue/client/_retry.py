"""How calls are retried: which ones, how often, how long to pause."""

from __future__ import annotations

import random
from dataclasses import dataclass

import grpc

from ._errors import status_of


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Exponential backoff with full jitter for calls that failed with UNAVAILABLE.

    Only calls that are safe to repeat are retried: reads, cancel (a repeated
    cancel is reconciled with the first), and enqueues, which always carry an
    idempotency key so that a retry after a lost reply returns the job the
    first attempt stored instead of creating a second one.

    Attributes:
        max_retries: retries after the first attempt; 0 disables retrying.
        initial_backoff_s: the upper bound of the first pause.
        max_backoff_s: the cap of every pause.
        multiplier: how much the bound grows after each retry.
    """

    max_retries: int = 5
    initial_backoff_s: float = 0.1
    max_backoff_s: float = 2.0
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError("max_retries must not be negative")
        if self.initial_backoff_s < 0 or self.max_backoff_s < 0:
            raise ValueError("backoffs must not be negative")
        if self.multiplier < 1:
            raise ValueError("multiplier must be at least 1")

    def backoff_s(self, retry: int) -> float:
        """The pause before retry number ``retry`` (1-based).

        Full jitter (a uniform pick below the bound) spreads out the clients
        that all lost the same server at the same moment.
        """
        bound = min(self.max_backoff_s, self.initial_backoff_s * self.multiplier ** (retry - 1))
        return random.uniform(0, bound)


DEFAULT_RETRY = RetryPolicy()
"""Up to 5 retries within about 3 s: enough to ride out a server restart."""


def is_retryable(error: grpc.RpcError) -> bool:
    """UNAVAILABLE means the request did not reach a server able to handle it, or its reply was
    lost on the way back; both are safe to repeat for the calls we retry at all.

    CANCELLED that reaches us as a status was the server's doing — a server
    shutting down cancels the calls still in flight, whose effect is then
    unknown, just as with a lost reply. (A caller's own cancellation surfaces as
    ``asyncio.CancelledError`` or ``KeyboardInterrupt``, never as a status.)

    DEADLINE_EXCEEDED is not retried: the server may still be working on the
    call, and a retry would extend the caller's deadline behind its back.
    """
    code, _ = status_of(error)
    return code in _RETRYABLE


_RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED})

"""A bound on failed dashboard logins per client address: guessing a token gets slow.

In the server's memory, per process: a brute force spread over many servers
meets each one's bound, which is still far below what guessing a 32-character
token needs. The table is bounded too (the addresses seen last are kept), so a
flood of addresses costs memory it already budgets. Behind a reverse proxy
every client shares the proxy's address: the bound is then the proxy's.
"""

from __future__ import annotations

from collections import OrderedDict, deque

MAX_FAILURES = 10
"""Failed logins an address may make in ``WINDOW_MS`` before it is refused (429)."""
WINDOW_MS = 60_000
MAX_ADDRESSES = 10_000
"""Addresses remembered at most; the one idle longest is forgotten first."""


class LoginLimiter:
    """Counts each address's failed logins over a sliding window of ``window_ms``."""

    def __init__(
        self,
        *,
        max_failures: int = MAX_FAILURES,
        window_ms: int = WINDOW_MS,
        max_addresses: int = MAX_ADDRESSES,
    ) -> None:
        self._max_failures = max_failures
        self._window_ms = window_ms
        self._max_addresses = max_addresses
        self._failures: OrderedDict[str, deque[int]] = OrderedDict()

    def blocked(self, address: str, now_ms: int) -> bool:
        """Whether ``address`` has used up its failures: even a right token waits."""
        times = self._failures.get(address)
        if times is None:
            return False
        while times and times[0] <= now_ms - self._window_ms:
            times.popleft()
        if not times:
            del self._failures[address]
            return False
        return len(times) >= self._max_failures

    def failed(self, address: str, now_ms: int) -> None:
        times = self._failures.setdefault(address, deque(maxlen=self._max_failures))
        times.append(now_ms)
        self._failures.move_to_end(address)
        while len(self._failures) > self._max_addresses:
            self._failures.popitem(last=False)

    def __len__(self) -> int:
        return len(self._failures)

"""The two clocks the store machine runs on (see _store_machine.py)."""

from __future__ import annotations

import time
from typing import cast
from urllib.parse import urlsplit

import redis

from jobqueue.domain import ManualClock

HOUR_MS = 3_600_000
"""Longer than any example runs: a lease, delay or retention that never ends within one."""


class ManualTime:
    """The memory store's clock: moved only by the machine, so all times are exact."""

    manual = True
    retention_ms = 5_000
    delays = (-5, 0, 10, 1_000)
    leases = (1, 100, 1_000)
    retry_delays = (0, 100)

    def __init__(self) -> None:
        self.clock = ManualClock()

    def now(self) -> int:
        return self.clock.now_ms()

    def wait_past(self, instant: int) -> None:
        """Nothing to wait for: a manual clock is where the machine puts it."""

    def close(self) -> None:
        pass


class RedisTime:
    """Redis's clock: every choice is far from a boundary, or already past it.

    The tests' redis-server runs on this host (on loopback), and its TIME is
    the kernel's realtime clock, the one ``time.time_ns`` reads here. So the
    machine reads Redis's clock without a round trip (two a step would cost
    more than the store calls they bracket), and exactly in order with the
    scripts: a reading taken before a call precedes the script's TIME, one
    taken after follows it. Each server is asked for TIME once, to check.
    """

    manual = False
    # Past due times are hours back, so they queue before every time the store
    # stamps (requeues, jobs due at once) whatever the real gaps between steps.
    delays = (-2 * HOUR_MS, -HOUR_MS, 0, HOUR_MS)
    leases = (1, HOUR_MS, HOUR_MS)
    retry_delays = (0, HOUR_MS)

    def __init__(self, url: str, *, retention_ms: int) -> None:
        self.retention_ms = retention_ms
        if url not in _SAME_CLOCK:
            assert urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1"), url
            with redis.Redis.from_url(url) as raw:
                seconds, micros = cast(tuple[int, int], raw.time())
            told = seconds * 1000 + micros // 1000
            assert abs(told - self.now()) < 50, "Redis does not tell this host's time"
            _SAME_CLOCK.add(url)

    def now(self) -> int:
        return time.time_ns() // 1_000_000

    def wait_past(self, instant: int) -> None:
        """Return once Redis's clock is past ``instant`` (a few ms at most)."""
        for _ in range(1_000):  # bounded
            missing = instant + 1 - self.now()
            if missing <= 0:
                return
            time.sleep(missing / 1000)
        raise AssertionError("the clock did not advance")

    def close(self) -> None:
        pass


_SAME_CLOCK: set[str] = set()
"""Servers whose TIME was checked against this host's clock."""


Time = ManualTime | RedisTime

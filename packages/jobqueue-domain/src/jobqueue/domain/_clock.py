"""Default implementations of the Clock and IdGenerator ports."""

from __future__ import annotations

import os
import random
import threading
import time


class SystemClock:
    """The machine's wall clock."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class ManualClock:
    """A clock that moves only when told to: for tests and simulations."""

    def __init__(self, start_ms: int = 1_700_000_000_000) -> None:
        self._now = start_ms

    def now_ms(self) -> int:
        return self._now

    def advance(self, ms: int) -> None:
        if ms < 0:
            raise ValueError("time only moves forward")
        self._now += ms

    def set(self, now_ms: int) -> None:
        if now_ms < self._now:
            raise ValueError("time only moves forward")
        self._now = now_ms


class UuidV7Generator:
    """RFC 9562 UUIDv7 ids: 48 bits of ms time, then a counter, then random bits.

    The 12-bit counter in ``rand_a`` keeps ids from one process strictly
    increasing within a millisecond; the remaining 62 random bits keep ids from
    many processes apart. They come from ``random``, which seeds itself from
    the OS and again in every forked child: ids need to be unique, not secret,
    and a bulk enqueue makes thousands of them (os.urandom and uuid.UUID cost
    more than the rest of a job's bookkeeping).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = 0
        self._counter = 0

    def new_id(self) -> str:
        with self._lock:
            now = time.time_ns() // 1_000_000
            if now > self._last_ms:
                self._last_ms = now
                self._counter = int.from_bytes(os.urandom(2)) & 0x3FF
            else:
                self._counter += 1
                if self._counter > 0xFFF:
                    self._last_ms += 1
                    self._counter = 0
            ms, counter = self._last_ms, self._counter
        value = (
            (ms & 0xFFFF_FFFF_FFFF) << 80
            | 0x7 << 76
            | counter << 64
            | 0b10 << 62
            | random.getrandbits(62)
        )
        h = f"{value:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

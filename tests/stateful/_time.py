"""The two clocks the store machine runs on (see test_store_machine.py)."""

from __future__ import annotations

import socket
import time
from typing import cast
from urllib.parse import urlsplit

import hiredis

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
    """Redis's clock, read with TIME: every choice is far from a boundary, or already past it.

    TIME goes over a plain blocking socket, parsed by hiredis, outside the
    event loop: the machine reads it twice a step, and a client library's
    connection pool would cost more than the store calls it brackets.
    """

    manual = False
    # Past due times are hours back, so they queue before every time the store
    # stamps (requeues, jobs due at once) whatever the real gaps between steps.
    delays = (-2 * HOUR_MS, -HOUR_MS, 0, HOUR_MS)
    leases = (1, HOUR_MS, HOUR_MS)
    retry_delays = (0, HOUR_MS)

    def __init__(self, url: str, *, retention_ms: int) -> None:
        parts = urlsplit(url)
        self.sock = socket.create_connection((parts.hostname, parts.port or 6379), timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = hiredis.Reader()
        self.retention_ms = retention_ms

    def now(self) -> int:
        self.sock.sendall(b"*1\r\n$4\r\nTIME\r\n")
        reply = self.reader.gets()
        while reply is False:
            chunk = self.sock.recv(256)
            if not chunk:
                raise ConnectionError("Redis closed the connection")
            self.reader.feed(chunk)
            reply = self.reader.gets()
        seconds, micros = cast(list[bytes], reply)
        return int(seconds) * 1000 + int(micros) // 1000

    def wait_past(self, instant: int) -> None:
        """Return once Redis's clock is past ``instant`` (a few ms at most)."""
        for _ in range(1_000):  # bounded
            missing = instant + 1 - self.now()
            if missing <= 0:
                return
            time.sleep(missing / 1000)
        raise AssertionError("Redis's clock did not advance")

    def close(self) -> None:
        self.sock.close()


Time = ManualTime | RedisTime

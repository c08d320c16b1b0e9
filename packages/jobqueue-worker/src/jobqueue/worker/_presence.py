"""The worker's presence: who it is, and the loop that keeps it listed.

A worker names itself ``host-pid-random`` (unique per process start, in the
id alphabet the API accepts) and says every third of its time to live what
it handles and how busy it is. The store forgets it when that time passes
without another heartbeat, so a worker killed outright leaves the list on
its own; a worker that stops gracefully says so and leaves at once.

Presence is advisory, so a failed heartbeat is logged and retried at the next
tick: it never stops the worker or touches its leases.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import time

from jobqueue.domain import WorkerInfo

from ._logging import error_text, logger
from ._settings import WorkerSettings
from ._source import JobSource, PresenceSource
from ._state import InFlight

_NOT_IN_ID = re.compile(r"[^A-Za-z0-9_.:-]+")
_HOST_IN_ID = 96
"""Room the host name may take in an id of at most 128 characters."""
_LEAVE_TIMEOUT_S = 2.0
"""How long ``leave`` waits for its goodbye: a stopping worker expires anyway."""


def worker_id(host: str, pid: int) -> str:
    """``host-pid-random``, the host cut down to the id alphabet (``validate_worker_id``)."""
    name = _NOT_IN_ID.sub("-", host).strip("-")[:_HOST_IN_ID] or "host"
    # secrets.token_hex(4) is exactly this; importing secrets loads hashlib and hmac (issue 17).
    return f"{name}-{pid}-{os.urandom(4).hex()}"


class PresenceBeat:
    """Heartbeats of one started worker; ``run`` is its background task."""

    def __init__(
        self,
        source: JobSource,
        settings: WorkerSettings,
        types: tuple[str, ...],
        state: InFlight,
        *,
        sdk: str,
    ) -> None:
        self._source = source if isinstance(source, PresenceSource) else None
        self._settings = settings
        self._state = state
        host = socket.gethostname()
        pid = os.getpid()
        self.identity = WorkerInfo(
            id=worker_id(host, pid),
            host=host[:256],
            pid=pid,
            sdk=sdk,
            types=types,
            concurrency=settings.concurrency,
            started_at_ms=time.time_ns() // 1_000_000,
        )
        self._sent = False
        self._failures = 0

    @property
    def enabled(self) -> bool:
        return self._source is not None and self._settings.presence_ttl_ms > 0

    def now(self) -> WorkerInfo:
        """What the worker says of itself now: its identity and its busy slots."""
        return WorkerInfo(
            id=self.identity.id,
            host=self.identity.host,
            pid=self.identity.pid,
            sdk=self.identity.sdk,
            types=self.identity.types,
            concurrency=self.identity.concurrency,
            # A lane's claim may answer before the other lane's settle frees its slots.
            busy=min(len(self._state.jobs), self.identity.concurrency),
            started_at_ms=self.identity.started_at_ms,
        )

    async def run(self) -> None:
        """Heartbeat every third of the time to live until cancelled."""
        ttl_ms = self._settings.presence_ttl_ms
        while True:
            await self._beat(ttl_ms)
            await asyncio.sleep(ttl_ms / 3 / 1000)

    async def leave(self) -> None:
        """Tell the store this worker is stopping, so it leaves the list at once."""
        if self._source is None or not self._sent:
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                self._source.heartbeat(self.now(), ttl_ms=0, stopping=True), _LEAVE_TIMEOUT_S
            )

    async def _beat(self, ttl_ms: int) -> None:
        assert self._source is not None
        try:
            await self._source.heartbeat(self.now(), ttl_ms=ttl_ms)
        except Exception as error:
            # Once per outage, not every few seconds (a server without the RPC
            # answers UNIMPLEMENTED to every one).
            self._failures += 1
            if self._failures == 1:
                text = error_text(error)
                logger.warning(
                    "presence heartbeat failed; the worker keeps running, unlisted, "
                    "and keeps trying: %s",
                    text,
                    extra={"error": text},
                )
        else:
            if self._failures:
                logger.info("presence heartbeat works again after %d failures", self._failures)
            self._failures = 0
            self._sent = True

"""Streams: a job's changes (``watch``) and running jobs' cancel requests (``cancellations``).

Both ride the store's one pub/sub connection (_pubsub.py). Pub/sub is a hint
here, never the authority: a watch re-reads the job hash after every message
and every second, and a worker that misses a cancel request hears it from
its next renew.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

from jobqueue.domain import Job, JobNotFound, StoreUnavailable

from ._codec import pairs_to_dict
from ._core import StoreCore, visible
from ._errors import translated
from ._listener import Listener


class Watching:
    """``watch`` and ``cancellations`` of one store, over its shared subscriber."""

    def __init__(self, core: StoreCore, get: Callable[[str], Awaitable[Job | None]]) -> None:
        self._core = core
        self._get = get
        # Every watch and cancellation stream shares one pub/sub connection
        # (_pubsub.py), or one per master on a cluster (_cluster_pubsub.py).
        self.subscriber = core.connections.subscriber
        topology = core.connections.topology
        if topology is not None and topology.is_sentinel:
            # Publishes of the new primary never reach a connection to the old one.
            topology.on_switch(self.subscriber.reconnect)

    async def watch(self, job_id: str) -> AsyncIterator[Job]:
        # Subscribed (on the store's shared pub/sub connection) before the
        # first read, so no change after that read goes unseen.
        core = self._core
        await core.resolve_layout()
        ns = core.namespaces[core.shard_of_id(job_id)]
        job_key = (ns + "j:" + job_id,)
        with translated():
            events = await self.subscriber.listen(ns + "ev:" + job_id, max_messages=1)
        try:
            with translated():
                fields = await core.script("watchers", [ns, job_id, 1], keys=job_key)
        except BaseException:
            events.close()
            raise
        try:
            job = visible(job_id, pairs_to_dict(fields)) if fields else None
            if job is None:
                raise JobNotFound(job_id)
            last: Job | None = None
            while job is not None:
                if job != last:
                    last = job
                    yield job
                    if job.status.is_terminal:
                        return
                # Returns on a change, after a reconnect (messages may have been
                # lost), or after a second: re-reading now and then is the safety net.
                await events.wait(1.0)
                if events.closed:
                    raise StoreUnavailable("the store was closed")
                job = await self._get(job_id)
        finally:
            events.close()
            try:
                with translated():
                    await core.script("watchers", [ns, job_id, -1], keys=job_key)
            except StoreUnavailable:
                pass

    async def cancellations(self) -> AsyncIterator[str]:
        """Ids of RUNNING jobs whose cancel was requested: cancel.lua publishes them.

        Every open iterator of the store shares one subscription of each
        ``cancels`` channel: one for the store on a single Redis, one per shard
        on a cluster (each on its shard's master). It listens on through
        reconnects (requests made meanwhile are missed; ``renew`` still
        reports them) and ends when the store closes.
        """
        if self.subscriber.closed:
            return
        await self._core.resolve_layout()
        signal = asyncio.Event()  # one wake-up for all the channels
        channels: list[Listener] = []
        try:
            with translated():
                for channel in self._core.cancel_channels():
                    channels.append(
                        await self.subscriber.listen(channel, confirm=False, signal=signal)
                    )
            while True:
                for events in channels:
                    for message in events.take():
                        yield message.decode()
                if any(events.closed for events in channels):
                    return
                await channels[0].wait()
        finally:
            for events in channels:
                events.close()

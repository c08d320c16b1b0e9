"""The server's part in recurring schedules: the ScheduleService over its store, fired on a timer.

Every server runs this loop; there is no leader to elect, lose or fail over
(the failure that makes other queues skip or double ticks on a deploy). Each
round asks the store for the schedules due by the store's clock and applies
one planned step per tick, atomically and only if no other server applied
it first (jobqueue/domain/_schedule_service.py), so any number of servers
fire each tick exactly once, and a server killed mid-round costs nothing.
"""

from __future__ import annotations

import asyncio
import logging

from jobqueue.domain import (
    Clock,
    IdGenerator,
    JobQueueError,
    JobStore,
    Limits,
    ScheduleService,
    ScheduleStore,
)
from jobqueue.memory import MemoryJobStore, MemoryScheduleStore
from jobqueue.redis import RedisJobStore, RedisScheduleStore

from ._cron import CronsimParser

_log = logging.getLogger(__name__)

FIRE_INTERVAL_S = 0.2
"""How often each server looks for due ticks: a tick fires within this (plus a round trip)."""


def schedule_store_for(store: JobStore, *, clock: Clock) -> ScheduleStore | None:
    """The ScheduleStore that lives beside ``store`` (and enqueues into it), if there is one.

    None for a store of another kind (a wrapper a test or an embedder put in
    the container): schedules need the store's own atomic steps.
    """
    if isinstance(store, MemoryJobStore):
        return MemoryScheduleStore(store, clock=clock)
    if isinstance(store, RedisJobStore):
        return RedisScheduleStore(store)
    return None


def schedule_service_for(
    store: JobStore, *, clock: Clock, ids: IdGenerator, limits: Limits | None = None
) -> ScheduleService | None:
    """The server's ScheduleService over ``store``; None (no schedules) for other stores."""
    schedules = schedule_store_for(store, clock=clock)
    if schedules is None:
        _log.warning("%s has no schedule store: schedules are off", type(store).__name__)
        return None
    return ScheduleService(
        schedules,
        store,
        cron=CronsimParser(),
        clock=clock,
        ids=ids,
        limits=limits,
    )


async def fire_forever(service: ScheduleService, *, interval_s: float = FIRE_INTERVAL_S) -> None:
    """Fire due ticks until cancelled; a failed round is retried on the next.

    While the store is down, rounds back off to ``_FAILING_INTERVAL_S`` and the
    log says the first failure, every ``_SAY_EVERY``-th with its count, and the
    recovery: a round every 200 ms logged five lines a second of one outage.
    """
    failures = 0
    while True:
        try:
            fired = await service.fire_due()
        except (JobQueueError, OSError) as error:
            failures += 1
            if failures == 1 or failures % _SAY_EVERY == 0:
                _log.warning("firing schedules failed (%d in a row), retrying: %s", failures, error)
            await asyncio.sleep(max(interval_s, min(_FAILING_INTERVAL_S, interval_s * failures)))
            continue
        if failures:
            _log.info("firing schedules works again after %d failed rounds", failures)
            failures = 0
        if fired:
            _log.debug("fired %d scheduled jobs", len(fired))
        await asyncio.sleep(interval_s)


_FAILING_INTERVAL_S = 2.0
"""The longest wait between rounds while they fail: a recovered store is used within it."""
_SAY_EVERY = 30
"""While rounds fail, one line every this many (a minute at the longest wait)."""


def start_firing(service: ScheduleService) -> asyncio.Task[None]:
    """The server's one call: a task that fires the service's schedules until cancelled."""
    return asyncio.create_task(fire_forever(service), name="jobqueue-schedules")

"""The overview's charts from the store's own series: they survive a new dashboard.

Two samples written by "servers" (``record_sample``) with jobs finished
between them; a dashboard built afterwards (a restarted server) draws both,
and one without the store's counters has nothing to draw.
"""

from __future__ import annotations

import re

from jobqueue.dashboard import Dashboard, DashboardSettings
from jobqueue.domain import JobCounters, JobService, JobStore, ManualClock, SystemClock

from .conftest import BASE, client_of, seed


def polylines(html: str) -> list[str]:
    return re.findall(r'<polyline[^>]*points="([^"]*)"', html)


async def test_the_charts_draw_the_stores_series(service: JobService, store: JobStore) -> None:
    assert isinstance(store, JobCounters)
    await store.record_sample(interval_ms=1, keep=100)
    await seed(service, store)
    # A bucket of 1 ms: the next sample is a bucket of its own once Redis's clock moved.
    while not await store.record_sample(interval_ms=1, keep=100):
        pass
    [before, after] = (await store.samples())[-2:]
    assert after.completed > before.completed

    restarted = Dashboard(service, clock=SystemClock(), counters=store)
    async with client_of(restarted) as client:
        html = (await client.get(BASE + "/")).text
    assert "Queue depth" in html
    assert any(line.count(",") >= 2 for line in polylines(html))

    # A ring that never sampled has no series: no line has two points.
    ring = Dashboard(service, clock=SystemClock(), settings=DashboardSettings())
    async with client_of(ring) as client:
        html = (await client.get(BASE + "/")).text
    assert not any(line.count(",") >= 2 for line in polylines(html))


async def test_the_window_leaves_out_older_samples(service: JobService, store: JobStore) -> None:
    assert isinstance(store, JobCounters)
    await store.record_sample(interval_ms=1, keep=100)
    [sample] = await store.samples()
    settings = DashboardSettings(sample_interval_ms=1_000, history_samples=60)
    clock = ManualClock(sample.at_ms + 59_000)
    history = Dashboard(service, clock=clock, settings=settings, counters=store).history
    assert [s.at_ms for s in await history.read()] == [sample.at_ms]
    clock.advance(2_000)
    assert await history.read() == []

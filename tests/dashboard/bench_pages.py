"""How long each dashboard page takes with 100,000 jobs stored (docs/operations.md, "Dashboard").

Not a test: a measurement, run by hand on a quiet machine.

    uv run python -m tests.dashboard.bench_pages memory
    uv run python -m tests.dashboard.bench_pages redis redis://127.0.0.1:6379/0

Each page is requested through the app's full ASGI stack (httpx2's ASGI
transport: no sockets, so the figures are the server's own time).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
import uuid

import httpx2

from jobqueue.dashboard import Dashboard, DashboardSettings
from jobqueue.domain import (
    EnqueueRequest,
    JobService,
    JobStatus,
    JobStore,
    Outcome,
    OutcomeKind,
    SystemClock,
    UuidV7Generator,
)
from jobqueue.memory import MemoryJobStore, MemoryStoreSettings
from jobqueue.redis import RedisJobStore, RedisStoreSettings

TYPES = [f"type-{i:02d}" for i in range(20)]
ROUNDS = 40


async def fill(service: JobService, store: JobStore, total: int) -> None:
    """100,000 jobs: 60% due, 10% scheduled, 20% completed, 8% failed, 2% cancelled."""
    later = int(time.time() * 1000) + 86_400_000
    batch = 500
    for start in range(0, total, batch):
        requests = [
            EnqueueRequest(
                type=TYPES[(start + i) % len(TYPES)],
                payload=b'{"n": %d}' % (start + i),
                execution_time_ms=later if (start + i) % 10 == 9 else None,
            )
            for i in range(batch)
        ]
        await service.enqueue_many(requests)
    for wanted, kind in (
        (total * 20 // 100, OutcomeKind.COMPLETE),
        (total * 8 // 100, OutcomeKind.FAIL),
    ):
        done = 0
        while done < wanted:
            leases = await store.claim(TYPES, limit=min(500, wanted - done), lease_ms=600_000)
            outcomes = [
                Outcome(job_id=lease.job.id, token=lease.token, kind=kind, error="boom")
                for lease in leases
            ]
            await store.settle(outcomes)
            done += len(leases)
    page = await service.list_jobs(status=JobStatus.PENDING, page_size=total * 2 // 100)
    for job in page.jobs:
        await service.cancel(job.id)


async def measure(store: JobStore, total: int) -> None:
    clock = SystemClock()
    service = JobService(store, clock=clock, ids=UuidV7Generator())
    started = time.monotonic()
    await fill(service, store, total)
    stats = (await service.stats()).total
    print(f"filled in {time.monotonic() - started:.0f} s: {stats}")
    dashboard = Dashboard(service, clock=clock, settings=DashboardSettings())
    for _ in range(3):
        await dashboard.sample_once()
    some = (await service.list_jobs(status=JobStatus.FAILED, page_size=1)).jobs[0]
    second = (
        await service.list_jobs(job_type="type-07", status=JobStatus.COMPLETED, page_size=50)
    ).next_cursor
    pages = {
        "overview": "/",
        "job types": "/types",
        "jobs (all)": "/jobs",
        "jobs: type + status, page 2": f"/jobs?type=type-07&status=completed&cursor={second}",
        "jobs: time range": "/jobs?type=type-07&status=pending&since=2000-01-01",
        "failed": "/failed",
        "cancelled": "/cancelled",
        "scheduled": "/scheduled",
        "job detail": f"/jobs/{some.id}",
    }
    transport = httpx2.ASGITransport(app=dashboard.app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://bench") as client:
        print(f"{'page':32} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
        for name, path in pages.items():
            times = []
            for _ in range(ROUNDS):
                begin = time.perf_counter()
                response = await client.get("/dashboard" + path)
                times.append((time.perf_counter() - begin) * 1000)
                assert response.status_code == 200, (path, response.status_code)
            times.sort()
            p95 = times[int(len(times) * 0.95) - 1]
            print(f"{name:32} {statistics.median(times):8.1f} {p95:8.1f} {times[-1]:8.1f}")


async def main() -> None:
    kind = sys.argv[1] if len(sys.argv) > 1 else "memory"
    total = 100_000
    clock = SystemClock()
    if kind == "memory":
        store: JobStore = MemoryJobStore(MemoryStoreSettings(), clock=clock)
    else:
        settings = RedisStoreSettings(url=sys.argv[2], key_prefix=f"bench-{uuid.uuid4().hex[:8]}")
        store = RedisJobStore(settings, clock=clock)
    try:
        await measure(store, total)
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main())

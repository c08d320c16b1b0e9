"""The dashboard over a real JobService, on each store, reached through httpx2's ASGI transport.

The transport runs the app on the test's own event loop, so a Redis store's
connections and the app share one loop, as they do in the server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx2
import pytest

from jobqueue.dashboard import CSRF_FIELD, Dashboard, DashboardSettings
from jobqueue.domain import (
    Job,
    JobService,
    JobStore,
    Outcome,
    OutcomeKind,
    SystemClock,
    UuidV7Generator,
)
from jobqueue.memory import MemoryJobStore, MemoryStoreSettings
from jobqueue.redis import RedisJobStore, RedisStoreSettings

ADMIN_TOKEN = "admin-token-0123456789abcdef"
READER_TOKEN = "reader-token-0123456789abcdef"
BASE = "http://testserver/dashboard"


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[JobStore]:
    clock = SystemClock()
    if request.param == "memory":
        store: JobStore = MemoryJobStore(MemoryStoreSettings(), clock=clock)
    else:
        url = request.getfixturevalue("redis_url")
        prefix = request.getfixturevalue("key_prefix")
        store = RedisJobStore(RedisStoreSettings(url=url, key_prefix=prefix), clock=clock)
    yield store
    await store.close()


@pytest.fixture
def service(store: JobStore) -> JobService:
    return JobService(store, clock=SystemClock(), ids=UuidV7Generator())


@dataclass
class Seeded:
    """One job in each state the pages show."""

    pending: Job
    scheduled: Job
    running: Job
    completed: Job
    failed: Job
    cancelled: Job


async def settle(
    store: JobStore,
    job_type: str,
    kind: OutcomeKind,
    *,
    result: bytes | None = None,
    error: str | None = None,
) -> Job:
    """Claim the type's one due job and settle it as a worker would."""
    (lease,) = await store.claim([job_type], limit=1, lease_ms=60_000)
    outcome = Outcome(job_id=lease.job.id, token=lease.token, kind=kind, result=result, error=error)
    assert await store.settle([outcome]) == [True]
    job = await store.get(lease.job.id)
    assert job is not None
    return job


async def seed(service: JobService, store: JobStore) -> Seeded:
    now = SystemClock().now_ms()
    await service.enqueue("report", b'{"month": "2026-11", "pages": [1, 2]}')
    completed = await settle(store, "report", OutcomeKind.COMPLETE, result=b'{"ok": true}')
    await service.enqueue("email", b'{"to": "ops@example.com"}', max_attempts=1)
    failed = await settle(store, "email", OutcomeKind.FAIL, error="SMTP 550: mailbox <unknown>")
    await service.enqueue("resize", b"\x89PNG\x00\x01\x02")
    (lease,) = await store.claim(["resize"], limit=1, lease_ms=600_000)
    running = lease.job
    pending = await service.enqueue("email", b'{"to": "a@example.com"}')
    scheduled = await service.enqueue("email", b"later", execution_time_ms=now + 3_600_000)
    cancelled = await service.cancel((await service.enqueue("report", b"{}")).id)
    return Seeded(pending, scheduled, running, completed, failed, cancelled)


@pytest.fixture
def dashboard_for(service: JobService) -> Callable[..., Dashboard]:
    def make(**settings: object) -> Dashboard:
        return Dashboard(
            service,
            clock=SystemClock(),
            settings=DashboardSettings(**settings),  # type: ignore[arg-type]
        )

    return make


def client_of(dashboard: Dashboard) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=dashboard.app), base_url="http://testserver"
    )


def csrf_of(html: str) -> str:
    """The CSRF token a page's form carries."""
    marker = f'name="{CSRF_FIELD}" value="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]

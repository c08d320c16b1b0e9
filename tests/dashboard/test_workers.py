"""The workers page and the job types page's "no worker" flag, on each store."""

from __future__ import annotations

from dataclasses import replace

from jobqueue.dashboard import Dashboard, DashboardSettings
from jobqueue.domain import (
    JobService,
    JobStore,
    PresenceService,
    PresenceStore,
    SystemClock,
    WorkerInfo,
)

from .conftest import BASE, client_of


def presence_of(store: JobStore) -> PresenceService:
    assert isinstance(store, PresenceStore)
    return PresenceService(store)


def dashboard(service: JobService, store: JobStore, *, presence: bool = True) -> Dashboard:
    return Dashboard(
        service,
        clock=SystemClock(),
        settings=DashboardSettings(),
        presence=presence_of(store) if presence else None,
    )


def worker(worker_id: str, *types: str, busy: int = 0) -> WorkerInfo:
    return WorkerInfo(
        id=worker_id,
        host="box-1",
        pid=4242,
        sdk="jobqueue-python/9.9.9",
        types=types,
        concurrency=10,
        busy=busy,
        started_at_ms=SystemClock().now_ms() - 60_000,
    )


async def test_the_workers_page_lists_live_workers(service: JobService, store: JobStore) -> None:
    presence = presence_of(store)
    await presence.heartbeat(worker("box-1-4242-aa", "email", "sms", busy=3), ttl_ms=30_000)
    await presence.heartbeat(worker("box-1-4243-bb", "report"), ttl_ms=30_000)
    async with client_of(dashboard(service, store)) as client:
        page = await client.get(BASE + "/workers")
    assert page.status_code == 200
    text = page.text
    assert 'id="worker-box-1-4242-aa"' in text
    assert 'id="worker-box-1-4243-bb"' in text
    assert "2 live workers, 3 of 20 slots busy." in text
    assert "jobqueue-python/9.9.9" in text
    assert "3 / 10" in text
    assert 'href="/dashboard/workers"' in text  # in the menu


async def test_the_workers_page_says_when_none_is_alive_or_presence_is_unknown(
    service: JobService, store: JobStore
) -> None:
    async with client_of(dashboard(service, store)) as client:
        assert "No live worker" in (await client.get(BASE + "/workers")).text
    async with client_of(dashboard(service, store, presence=False)) as client:
        page = await client.get(BASE + "/workers")
    assert "does not keep worker presence" in page.text


async def test_the_types_page_flags_a_type_with_due_jobs_and_no_worker(
    service: JobService, store: JobStore
) -> None:
    await service.enqueue("email", b"{}")
    await service.enqueue("orphan", b"{}")
    await service.enqueue("later", b"{}", execution_time_ms=SystemClock().now_ms() + 3_600_000)
    await presence_of(store).heartbeat(worker("w-1", "email"), ttl_ms=30_000)
    async with client_of(dashboard(service, store)) as client:
        page = await client.get(BASE + "/types")
    assert 'id="no-worker-orphan"' in page.text
    assert 'id="no-worker-email"' not in page.text
    assert 'id="no-worker-later"' not in page.text  # nothing due yet
    # Without presence the page cannot tell, and flags nothing.
    async with client_of(dashboard(service, store, presence=False)) as client:
        unknown = await client.get(BASE + "/types")
    assert "no-worker-" not in unknown.text


async def test_the_overview_counts_live_workers_and_names_unattended_types(
    service: JobService, store: JobStore
) -> None:
    await service.enqueue("orphan", b"{}")
    await presence_of(store).heartbeat(worker("w-1", "email"), ttl_ms=30_000)
    await presence_of(store).heartbeat(worker("w-2", "email"), ttl_ms=30_000)
    async with client_of(dashboard(service, store)) as client:
        page = await client.get(BASE + "/")
    assert '<div class="value" id="workers-alive">2</div>' in page.text
    assert "Due jobs and no live worker: orphan." in page.text
    async with client_of(dashboard(service, store, presence=False)) as client:
        unknown = await client.get(BASE + "/")
    assert 'id="workers-alive"' not in unknown.text
    assert 'id="unattended"' not in unknown.text


async def test_a_start_time_never_given_shows_as_a_dash(
    service: JobService, store: JobStore
) -> None:
    await presence_of(store).heartbeat(
        replace(worker("box-1-4244-cc", "email"), started_at_ms=0), ttl_ms=30_000
    )
    async with client_of(dashboard(service, store)) as client:
        text = (await client.get(BASE + "/workers")).text
    row = text[text.index('id="worker-box-1-4244-cc"') :]
    assert '<td class="started"><span class="muted">-</span></td>' in row[: row.index("</tr>")]
    assert "1970" not in text

"""Pause and resume from the job types page: the form, the role and CSRF checks, on each store."""

from __future__ import annotations

import httpx2

from jobqueue.dashboard import Dashboard, DashboardSettings
from jobqueue.domain import GateService, JobService, JobStore, SystemClock, TypeGates

from .conftest import ADMIN_TOKEN, BASE, READER_TOKEN, client_of, csrf_of


def gates_of(store: JobStore) -> TypeGates:
    assert isinstance(store, TypeGates)
    return store


def dashboard(service: JobService, store: JobStore, **settings: object) -> Dashboard:
    return Dashboard(
        service,
        clock=SystemClock(),
        settings=DashboardSettings(**settings),  # type: ignore[arg-type]
        gates=GateService(gates_of(store)),
    )


async def log_in(client: httpx2.AsyncClient, token: str) -> None:
    form = await client.get(BASE + "/login")
    await client.post(BASE + "/login", data={"token": token, "csrf_token": csrf_of(form.text)})


async def test_pause_and_resume_from_the_types_page(service: JobService, store: JobStore) -> None:
    await service.enqueue("email", b"{}")
    async with client_of(dashboard(service, store)) as client:
        page = await client.get(BASE + "/types")
        assert 'id="pause-email"' in page.text
        paused = await client.post(
            BASE + "/types/email/pause", data={"csrf_token": csrf_of(page.text)}
        )
        assert paused.status_code == 303
        assert paused.headers["location"] == "/dashboard/types"
        assert await gates_of(store).paused_types() == ["email"]
        assert await store.claim(["email"], limit=1, lease_ms=60_000) == []
        page = await client.get(BASE + "/types")
        assert 'id="paused-email"' in page.text
        assert 'id="resume-email"' in page.text
        await client.post(BASE + "/types/email/resume", data={"csrf_token": csrf_of(page.text)})
    assert await gates_of(store).paused_types() == []
    assert len(await store.claim(["email"], limit=1, lease_ms=60_000)) == 1


async def test_a_paused_type_without_jobs_stays_on_the_page(
    service: JobService, store: JobStore
) -> None:
    await gates_of(store).pause_type("idle")
    async with client_of(dashboard(service, store)) as client:
        page = await client.get(BASE + "/types")
    assert 'id="paused-idle"' in page.text
    assert 'id="resume-idle"' in page.text


async def test_the_read_only_login_sees_the_state_and_cannot_pause(
    service: JobService, store: JobStore
) -> None:
    await service.enqueue("email", b"{}")
    app = dashboard(service, store, token=ADMIN_TOKEN, readonly_token=READER_TOKEN, secret="s" * 32)
    async with client_of(app) as client:
        await log_in(client, READER_TOKEN)
        page = await client.get(BASE + "/types")
        assert page.status_code == 200
        assert "active" in page.text
        assert 'id="pause-email"' not in page.text
        refused = await client.post(
            BASE + "/types/email/pause", data={"csrf_token": csrf_of(page.text)}
        )
    assert refused.status_code == 403
    assert await gates_of(store).paused_types() == []


async def test_a_pause_without_the_csrf_token_is_refused(
    service: JobService, store: JobStore
) -> None:
    await service.enqueue("email", b"{}")
    async with client_of(dashboard(service, store)) as client:
        missing = await client.post(BASE + "/types/email/pause", data={})
        forged = await client.post(BASE + "/types/email/pause", data={"csrf_token": "x" * 43})
    assert missing.status_code == forged.status_code == 403
    assert await gates_of(store).paused_types() == []


async def test_a_bad_type_is_a_400_and_pauses_nothing(service: JobService, store: JobStore) -> None:
    await service.enqueue("email", b"{}")  # for a page with a form
    async with client_of(dashboard(service, store)) as client:
        page = await client.get(BASE + "/types")
        bad = await client.post(
            BASE + "/types/bad%20type!/pause", data={"csrf_token": csrf_of(page.text)}
        )
    assert bad.status_code == 400
    assert await gates_of(store).paused_types() == []


async def test_without_gates_there_is_no_button_and_the_action_is_404(
    service: JobService,
) -> None:
    job = await service.enqueue("email", b"{}")
    plain = Dashboard(service, clock=SystemClock(), settings=DashboardSettings())
    async with client_of(plain) as client:
        page = await client.get(BASE + "/types")
        assert 'id="pause-email"' not in page.text
        job_page = await client.get(BASE + f"/jobs/{job.id}")  # its cancel form has a token
        refused = await client.post(
            BASE + "/types/email/pause", data={"csrf_token": csrf_of(job_page.text)}
        )
    assert refused.status_code == 404

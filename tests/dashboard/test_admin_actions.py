"""Retry, delete and bulk actions from the dashboard: forms, roles and CSRF, on each store."""

from __future__ import annotations

from typing import cast

import httpx2

from jobqueue.dashboard import Dashboard, DashboardSettings
from jobqueue.domain import (
    AdminService,
    AdminStore,
    JobQuery,
    JobService,
    JobStatus,
    JobStore,
    OutcomeKind,
    SystemClock,
)

from .conftest import ADMIN_TOKEN, BASE, READER_TOKEN, client_of, csrf_of, seed, settle


def dashboard(service: JobService, store: JobStore, **settings: object) -> Dashboard:
    assert isinstance(store, AdminStore)
    return Dashboard(
        service,
        clock=SystemClock(),
        settings=DashboardSettings(**settings),  # type: ignore[arg-type]
        admin=AdminService(cast(AdminStore, store)),
    )


async def log_in(client: httpx2.AsyncClient, token: str) -> None:
    form = await client.get(BASE + "/login")
    await client.post(BASE + "/login", data={"token": token, "csrf_token": csrf_of(form.text)})


async def failed_jobs(service: JobService, store: JobStore, job_type: str, count: int) -> None:
    for _ in range(count):
        await service.enqueue(job_type, b"{}", max_attempts=1)
        await settle(store, job_type, OutcomeKind.FAIL, error="boom")


async def test_retry_and_delete_from_the_job_page(service: JobService, store: JobStore) -> None:
    seeded = await seed(service, store)
    async with client_of(dashboard(service, store)) as client:
        page = await client.get(f"{BASE}/jobs/{seeded.failed.id}")
        assert 'id="retry"' in page.text
        assert 'id="delete"' in page.text
        retried = await client.post(
            f"{BASE}/jobs/{seeded.failed.id}/retry", data={"csrf_token": csrf_of(page.text)}
        )
        assert retried.status_code == 303
        assert retried.headers["location"] == f"/dashboard/jobs/{seeded.failed.id}"
        job = await store.get(seeded.failed.id)
        assert job is not None
        assert job.status is JobStatus.PENDING
        assert job.last_error == "SMTP 550: mailbox <unknown>"
        # A pending job offers neither; asking anyway is a 409 and changes nothing.
        page = await client.get(f"{BASE}/jobs/{seeded.failed.id}")
        assert 'id="retry"' not in page.text
        assert 'id="delete"' not in page.text
        refused = await client.post(
            f"{BASE}/jobs/{seeded.failed.id}/delete", data={"csrf_token": csrf_of(page.text)}
        )
        assert refused.status_code == 409
        assert "cancel it first" in refused.text
        assert await store.get(seeded.failed.id) == job
        deleted = await client.post(
            f"{BASE}/jobs/{seeded.completed.id}/delete", data={"csrf_token": csrf_of(page.text)}
        )
        assert deleted.status_code == 303
        assert deleted.headers["location"].startswith("/dashboard/jobs?notice=")
        shown = await client.get(deleted.headers["location"])
        assert f'role="status">Deleted job {seeded.completed.id}.</p>' in shown.text
        assert await store.get(seeded.completed.id) is None


async def test_bulk_retry_and_delete_over_the_failed_pages_filter(
    service: JobService, store: JobStore
) -> None:
    await failed_jobs(service, store, "mail", 4)
    await failed_jobs(service, store, "other", 2)
    async with client_of(dashboard(service, store)) as client:
        page = await client.get(BASE + "/failed?type=mail")
        assert 'id="bulk-retry"' in page.text
        form = {"csrf_token": csrf_of(page.text), "type": "mail", "since": "", "until": ""}
        done = await client.post(BASE + "/failed/bulk", data={**form, "action": "retry"})
        assert done.status_code == 303
        shown = await client.get(done.headers["location"])
        assert "Retried 4 of 4 matching jobs." in shown.text
        failed = await store.list_jobs(JobQuery(status=JobStatus.FAILED))
        assert [job.type for job in failed.jobs] == ["other", "other"]
        form["type"] = ""
        done = await client.post(BASE + "/failed/bulk", data={**form, "action": "delete"})
        assert done.status_code == 303
        assert "Deleted 2 of 2" in (await client.get(done.headers["location"])).text
    assert (await store.list_jobs(JobQuery(status=JobStatus.FAILED))).jobs == []
    assert len((await store.list_jobs(JobQuery(type="mail"))).jobs) == 4


async def test_a_bulk_form_with_a_bad_filter_changes_nothing(
    service: JobService, store: JobStore
) -> None:
    await failed_jobs(service, store, "mail", 2)
    async with client_of(dashboard(service, store)) as client:
        page = await client.get(BASE + "/failed")
        token = csrf_of(page.text)
        cases = [
            ("/failed/bulk", {"action": "explode"}),
            ("/failed/bulk", {"action": "retry", "since": "2026-01-01T00:00"}),
            ("/failed/bulk", {"action": "retry", "until": "tomorrow"}),
            ("/failed/bulk", {"action": "retry", "type": "not valid!"}),
            ("/scheduled/bulk", {"action": "retry"}),
        ]
        for path, fields in cases:
            answer = await client.post(BASE + path, data={"csrf_token": token, **fields})
            assert answer.status_code == 400, (path, fields, answer.text)
    assert len((await store.list_jobs(JobQuery(status=JobStatus.FAILED))).jobs) == 2


async def test_the_read_only_login_sees_no_admin_forms_and_is_refused(
    service: JobService, store: JobStore
) -> None:
    seeded = await seed(service, store)
    app = dashboard(service, store, token=ADMIN_TOKEN, readonly_token=READER_TOKEN, secret="s" * 32)
    async with client_of(app) as client:
        await log_in(client, READER_TOKEN)
        page = await client.get(f"{BASE}/jobs/{seeded.failed.id}")
        assert 'id="retry"' not in page.text
        listing = await client.get(BASE + "/failed")
        assert 'id="bulk-retry"' not in listing.text
        token = csrf_of(listing.text)
        refusals = [
            await client.post(f"{BASE}/jobs/{seeded.failed.id}/retry", data={"csrf_token": token}),
            await client.post(
                f"{BASE}/jobs/{seeded.completed.id}/delete", data={"csrf_token": token}
            ),
            await client.post(
                BASE + "/failed/bulk", data={"csrf_token": token, "action": "delete"}
            ),
        ]
    assert [answer.status_code for answer in refusals] == [403, 403, 403]
    assert await store.get(seeded.failed.id) == seeded.failed
    assert await store.get(seeded.completed.id) is not None


async def test_admin_actions_without_the_csrf_token_are_refused(
    service: JobService, store: JobStore
) -> None:
    seeded = await seed(service, store)
    async with client_of(dashboard(service, store)) as client:
        answers = [
            await client.post(f"{BASE}/jobs/{seeded.failed.id}/retry", data={}),
            await client.post(
                BASE + "/failed/bulk", data={"csrf_token": "forged", "action": "delete"}
            ),
        ]
    assert [answer.status_code for answer in answers] == [403, 403]
    assert await store.get(seeded.failed.id) == seeded.failed


async def test_without_the_admin_service_there_are_no_forms(
    service: JobService, store: JobStore
) -> None:
    seeded = await seed(service, store)
    plain = Dashboard(service, clock=SystemClock(), settings=DashboardSettings())
    async with client_of(plain) as client:
        page = await client.get(f"{BASE}/jobs/{seeded.failed.id}")
        assert 'id="retry"' not in page.text
        listing = await client.get(BASE + "/failed")
        assert 'id="bulk-retry"' not in listing.text
        # The pending job's page has a form (cancel): its CSRF token is good.
        with_form = await client.get(f"{BASE}/jobs/{seeded.pending.id}")
        refused = await client.post(
            f"{BASE}/jobs/{seeded.failed.id}/retry", data={"csrf_token": csrf_of(with_form.text)}
        )
    assert refused.status_code == 404

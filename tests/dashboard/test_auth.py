"""Login, logout, the read-only role and CSRF: refusals change nothing."""

from __future__ import annotations

from collections.abc import Callable

import httpx2

from jobqueue.dashboard import Dashboard
from jobqueue.domain import JobService, JobStatus, JobStore

from .conftest import ADMIN_TOKEN, BASE, READER_TOKEN, client_of, csrf_of, seed

PAGES = ["/", "/types", "/jobs", "/failed", "/cancelled", "/scheduled", "/live/overview"]


def protected(dashboard_for: Callable[..., Dashboard]) -> Dashboard:
    return dashboard_for(token=ADMIN_TOKEN, readonly_token=READER_TOKEN, secret="s" * 32)


async def log_in(client: httpx2.AsyncClient, token: str) -> httpx2.Response:
    form = await client.get(BASE + "/login")
    return await client.post(
        BASE + "/login", data={"token": token, "csrf_token": csrf_of(form.text)}
    )


async def test_with_a_token_every_page_asks_for_a_login(
    service: JobService, dashboard_for: Callable[..., Dashboard]
) -> None:
    job = await service.enqueue("t", b"")
    async with client_of(protected(dashboard_for)) as client:
        for path in [*PAGES, f"/jobs/{job.id}", f"/live/jobs/{job.id}"]:
            response = await client.get(BASE + path)
            assert response.status_code == 303, path
            assert response.headers["location"] == "/dashboard/login"
        assert (await client.get(BASE + "/static/dashboard.css")).status_code == 200


async def test_login_sets_a_signed_session_and_logout_ends_it(
    service: JobService, dashboard_for: Callable[..., Dashboard]
) -> None:
    async with client_of(protected(dashboard_for)) as client:
        wrong = await log_in(client, "not-the-token")
        assert wrong.status_code == 401
        assert (await client.get(BASE + "/")).status_code == 303
        right = await log_in(client, ADMIN_TOKEN)
        assert right.status_code == 303
        assert right.headers["location"] == "/dashboard/"
        cookie = right.headers["set-cookie"]
        assert "httponly" in cookie.lower()
        assert "samesite=strict" in cookie.lower()
        assert "path=/dashboard" in cookie.lower()
        assert ADMIN_TOKEN not in cookie
        overview = await client.get(BASE + "/")
        assert overview.status_code == 200
        assert "Log out" in overview.text
        out = await client.post(BASE + "/logout", data={"csrf_token": csrf_of(overview.text)})
        assert out.status_code == 303
        assert (await client.get(BASE + "/")).status_code == 303


async def test_a_session_signed_with_another_secret_is_not_a_login(
    service: JobService, dashboard_for: Callable[..., Dashboard]
) -> None:
    async with client_of(protected(dashboard_for)) as client:
        await log_in(client, ADMIN_TOKEN)
        stolen = dict(client.cookies)
    other = dashboard_for(token=ADMIN_TOKEN, secret="t" * 32)
    async with client_of(other) as client:
        client.cookies.update(stolen)
        assert (await client.get(BASE + "/")).status_code == 303


async def test_the_read_only_token_sees_everything_and_changes_nothing(
    service: JobService, store: JobStore, dashboard_for: Callable[..., Dashboard]
) -> None:
    jobs = await seed(service, store)
    async with client_of(protected(dashboard_for)) as client:
        await log_in(client, READER_TOKEN)
        for path in [p for p in PAGES if not p.startswith("/live")]:
            assert (await client.get(BASE + path)).status_code == 200, path
        page = await client.get(BASE + f"/jobs/{jobs.pending.id}")
        assert page.status_code == 200
        assert "read-only" in page.text
        assert "Cancel job" not in page.text
        refused = await client.post(
            BASE + f"/jobs/{jobs.pending.id}/cancel", data={"csrf_token": csrf_of(page.text)}
        )
    assert refused.status_code == 403
    assert "read-only" in refused.text
    assert (await service.get(jobs.pending.id)).status is JobStatus.PENDING


async def test_a_post_without_the_sessions_csrf_token_is_refused(
    service: JobService, dashboard_for: Callable[..., Dashboard]
) -> None:
    job = await service.enqueue("t", b"")
    for dashboard in (protected(dashboard_for), dashboard_for()):
        async with client_of(dashboard) as client:
            if dashboard.settings.auth_required:
                await log_in(client, ADMIN_TOKEN)
            page = await client.get(BASE + f"/jobs/{job.id}")
            assert "Cancel job" in page.text
            url = BASE + f"/jobs/{job.id}/cancel"
            missing = await client.post(url, data={})
            forged = await client.post(url, data={"csrf_token": "x" * 43})
            # Another session's token is worth nothing here.
            async with client_of(dashboard) as stranger:
                if dashboard.settings.auth_required:
                    await log_in(stranger, ADMIN_TOKEN)
                theirs = csrf_of((await stranger.get(BASE + f"/jobs/{job.id}")).text)
            crossed = await client.post(url, data={"csrf_token": theirs})
        assert missing.status_code == forged.status_code == crossed.status_code == 403
        assert "CSRF" in missing.text
        assert (await service.get(job.id)).status is JobStatus.PENDING


async def test_login_itself_needs_the_csrf_token(
    service: JobService, dashboard_for: Callable[..., Dashboard]
) -> None:
    async with client_of(protected(dashboard_for)) as client:
        response = await client.post(BASE + "/login", data={"token": ADMIN_TOKEN})
        assert response.status_code == 403
        assert (await client.get(BASE + "/")).status_code == 303


async def test_without_tokens_the_dashboard_is_open(
    service: JobService, dashboard_for: Callable[..., Dashboard]
) -> None:
    async with client_of(dashboard_for()) as client:
        page = await client.get(BASE + "/")
        login = await client.get(BASE + "/login")
    assert page.status_code == 200
    assert "open access" in page.text
    assert login.status_code == 303

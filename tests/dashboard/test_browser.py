"""The dashboard in a real Chromium (Debian's), against the real server App on its HTTP port.

Every page renders and updates live with no console error and no CSP
violation; cancel works; login, logout, read-only refusal and CSRF refusal
behave as a person would see them. Set JOBQUEUE_SCREENSHOTS_DIR=docs/img to
refresh the README's screenshots.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, expect, sync_playwright

from jobqueue.domain import Job, JobService, JobStatus, JobStore, Outcome, OutcomeKind

from ._browser import CHROMIUM, ServerThread, Watched, need_chromium, save_screenshot
from .conftest import ADMIN_TOKEN, READER_TOKEN

REFUSED = "the server responded with a status of 4"
"""Chromium logs a document answered 401/403 as a console error: expected where a test asks."""

pytestmark = pytest.mark.e2e

TYPES = ["email.send", "image.resize", "report.build", "webhook.deliver"]


async def populate(service: JobService, store: JobStore) -> None:
    """A few rounds of work, with samples between them, so charts and tables have something."""
    for round_ in range(6):
        for index, job_type in enumerate(TYPES):
            for n in range(4 + 3 * index + round_):
                payload = f'{{"round": {round_}, "n": {n}, "to": "user{n}@example.com"}}'
                await service.enqueue(job_type, payload.encode(), max_attempts=1)
        leases = await store.claim(TYPES, limit=10 + 4 * round_, lease_ms=600_000)
        outcomes = [
            Outcome(
                job_id=lease.job.id,
                token=lease.token,
                kind=OutcomeKind.FAIL if i % 5 == 0 else OutcomeKind.COMPLETE,
                error="TimeoutError: upstream took 30 s" if i % 5 == 0 else None,
                result=None if i % 5 == 0 else b'{"delivered": true}',
            )
            for i, lease in enumerate(leases)
        ]
        await store.settle(outcomes)
        await asyncio.sleep(0.25)
    await store.claim(["image.resize"], limit=3, lease_ms=600_000)  # left RUNNING
    later = int(time.time() * 1000) + 3_600_000
    for n in range(5):
        await service.enqueue("report.build", b'{"nightly": true}', execution_time_ms=later + n)
    await service.cancel((await service.enqueue("webhook.deliver", b"{}")).id)


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    need_chromium()
    thread = ServerThread(
        {
            "JOBQUEUE_DASHBOARD_TOKEN": ADMIN_TOKEN,
            "JOBQUEUE_DASHBOARD_READONLY_TOKEN": READER_TOKEN,
            "JOBQUEUE_DASHBOARD_SECRET": "browser-test-secret-0123456789",
            "JOBQUEUE_DASHBOARD_SAMPLE_INTERVAL_MS": "200",
            "JOBQUEUE_DASHBOARD_PAGE_SIZE": "20",
        }
    )
    thread.start()
    try:
        thread.call(populate(thread.service, thread.store))
        yield thread
    finally:
        thread.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    need_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
        )
        yield browser
        browser.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    yield context
    context.close()


def log_in(watched: Watched, server: ServerThread, token: str) -> None:
    page = watched.page
    page.goto(server.url + "/")
    expect(page).to_have_url(re.compile(r"/dashboard/login$"))
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Overview")


def a_pending_job(server: ServerThread) -> Job:
    return server.call(server.service.enqueue("email.send", b'{"to": "x@example.com"}'))


def test_every_page_renders_and_updates_live_without_console_errors(
    server: ServerThread, context: BrowserContext, tmp_path: Path
) -> None:
    watched = Watched(context.new_page())
    page = watched.page
    page.goto(server.url + "/login")
    save_screenshot(page, "dashboard-login", tmp_path)
    log_in(watched, server, ADMIN_TOKEN)
    expect(page.locator("svg polyline").first).to_be_visible()
    # Live: a job enqueued now shows in the overview's depth without a reload.
    depth = int(page.locator("#queue-depth").inner_text())
    server.call(server.service.enqueue("email.send", b"{}"))
    expect(page.locator("#queue-depth")).to_have_text(str(depth + 1), timeout=10_000)
    save_screenshot(page, "dashboard-overview", tmp_path)

    headings = {
        "Job types": "Job types",
        "Jobs": "Jobs",
        "Failed": "Failed jobs",
        "Cancelled": "Cancelled jobs",
        "Scheduled": "Scheduled jobs",
    }
    for link, heading in headings.items():
        page.click(f"header nav >> text='{link}'")
        expect(page.locator("h1")).to_have_text(heading)
        save_screenshot(page, "dashboard-" + link.lower().replace(" ", "-"), tmp_path)
    expect(page.locator("table tbody tr").first).to_be_visible()  # scheduled jobs listed

    # Filters through htmx, and the next page by cursor.
    page.click("header nav >> text='Jobs'")
    page.fill("input[name=type]", "email.send")
    page.select_option("select[name=status]", "completed")
    page.click("form.filters button")
    expect(page).to_have_url(re.compile(r"type=email.send.*status=completed"))
    expect(page.locator("#results tbody tr").first).to_contain_text("email.send")
    page.click("#next-page")
    expect(page.locator("#results tbody tr").first).to_contain_text("email.send")

    # An exact id opens the job.
    wanted = server.call(server.service.list_jobs(status=JobStatus.FAILED, page_size=1)).jobs[0]
    page.fill("input[name=id]", wanted.id)
    page.click("form.filters button")
    expect(page).to_have_url(re.compile(f"/dashboard/jobs/{wanted.id}$"))
    expect(page.locator("h1")).to_contain_text(wanted.id)

    page.click("header nav >> text='Failed'")
    page.click("#results tbody tr >> nth=0 >> td.id a")
    expect(page.locator("#job-status")).to_contain_text("failed")
    expect(page.locator("pre").first).to_contain_text("TimeoutError")
    save_screenshot(page, "dashboard-job", tmp_path)
    watched.assert_clean()


def test_cancel_from_the_job_page(server: ServerThread, context: BrowserContext) -> None:
    watched = Watched(context.new_page())
    log_in(watched, server, ADMIN_TOKEN)
    job = a_pending_job(server)
    page = watched.page
    page.goto(f"{server.url}/jobs/{job.id}")
    expect(page.locator("#job-status")).to_contain_text("pending")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#cancel")
    expect(page.locator("#job-status")).to_contain_text("cancelled")
    expect(page.locator("#cancel")).to_have_count(0)
    assert server.call(server.service.get(job.id)).status is JobStatus.CANCELLED
    watched.assert_clean()


def test_login_refuses_a_wrong_token_and_logout_ends_the_session(
    server: ServerThread, context: BrowserContext
) -> None:
    watched = Watched(context.new_page())
    page = watched.page
    page.goto(server.url + "/login")
    page.fill("input[name=token]", "not-the-token")
    page.click("button[type=submit]")
    expect(page.locator("#login-error")).to_have_text("Wrong token.")
    log_in(watched, server, ADMIN_TOKEN)
    page.click("header >> text='Log out'")
    expect(page).to_have_url(re.compile(r"/dashboard/login$"))
    page.goto(server.url + "/types")
    expect(page).to_have_url(re.compile(r"/dashboard/login$"))
    watched.assert_clean(allowed=(REFUSED,))


def test_the_read_only_login_cannot_cancel(server: ServerThread, context: BrowserContext) -> None:
    watched = Watched(context.new_page())
    log_in(watched, server, READER_TOKEN)
    job = a_pending_job(server)
    page = watched.page
    page.goto(f"{server.url}/jobs/{job.id}")
    expect(page.locator("header .who")).to_contain_text("read-only")
    expect(page.locator("#cancel")).to_have_count(0)
    # The button is not there; post the form anyway, with the session's own CSRF token.
    page.evaluate(
        """(action) => {
            const form = document.createElement('form');
            form.method = 'post';
            form.action = action;
            form.appendChild(document.querySelector('input[name=csrf_token]').cloneNode());
            document.body.appendChild(form);
            form.submit();
        }""",
        f"{server.url}/jobs/{job.id}/cancel",
    )
    expect(page.locator("#error-message")).to_contain_text("read-only")
    assert server.call(server.service.get(job.id)).status is JobStatus.PENDING
    watched.assert_clean(allowed=(REFUSED,))


def test_a_form_with_a_forged_csrf_token_is_refused(
    server: ServerThread, context: BrowserContext
) -> None:
    watched = Watched(context.new_page())
    log_in(watched, server, ADMIN_TOKEN)
    job = a_pending_job(server)
    page = watched.page
    page.goto(f"{server.url}/jobs/{job.id}")
    # At submit time: the live region may re-render the form (and its token) before the click.
    page.evaluate(
        "document.addEventListener('submit', e =>"
        " e.target.querySelector('input[name=csrf_token]').value = 'forged', true)"
    )
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#cancel")
    expect(page.locator("#error-message")).to_contain_text("CSRF")
    assert server.call(server.service.get(job.id)).status is JobStatus.PENDING
    watched.assert_clean(allowed=(REFUSED,))


def test_a_job_page_follows_the_job_live(server: ServerThread, context: BrowserContext) -> None:
    watched = Watched(context.new_page())
    log_in(watched, server, ADMIN_TOKEN)
    job = a_pending_job(server)
    page = watched.page
    page.goto(f"{server.url}/jobs/{job.id}")
    expect(page.locator("#cancel")).to_have_count(1)
    server.call(server.service.cancel(job.id))  # elsewhere: the API, another operator
    expect(page.locator("#job-status")).to_contain_text("cancelled", timeout=10_000)
    expect(page.locator("#cancel")).to_have_count(0)
    watched.assert_clean()


def test_pause_and_resume_from_the_types_page(
    server: ServerThread, context: BrowserContext
) -> None:
    watched = Watched(context.new_page())
    log_in(watched, server, ADMIN_TOKEN)
    page = watched.page
    page.goto(f"{server.url}/types")
    page.locator('[id="pause-webhook.deliver"]').click()
    expect(page).to_have_url(re.compile(r"/dashboard/types$"))
    expect(page.locator('[id="paused-webhook.deliver"]')).to_have_text("paused")
    assert server.call(server.container.gate_service().paused_types()) == ["webhook.deliver"]
    page.locator('[id="resume-webhook.deliver"]').click()
    expect(page.locator('[id="pause-webhook.deliver"]')).to_be_visible()
    assert server.call(server.container.gate_service().paused_types()) == []
    watched.assert_clean()

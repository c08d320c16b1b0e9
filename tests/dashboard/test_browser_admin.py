"""Admin actions in a real Chromium against the real server: retry and delete a job, and a
bulk retry of 10,000 failed jobs from the failed page in at most 10 s, with no console error."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, expect, sync_playwright

from jobqueue.domain import (
    EnqueueRequest,
    Job,
    JobQuery,
    JobService,
    JobStatus,
    JobStore,
    Outcome,
    OutcomeKind,
)

from ._browser import CHROMIUM, ServerThread, Watched, need_chromium
from .conftest import ADMIN_TOKEN, READER_TOKEN

pytestmark = pytest.mark.e2e

MANY = 10_000
BULK_TYPE = "bulk.retry"
BULK_BUDGET_S = 10.0


async def fail_all(service: JobService, store: JobStore, job_type: str, count: int) -> None:
    """``count`` jobs of ``job_type`` enqueued, claimed and failed, a thousand at a time."""
    for start in range(0, count, 1_000):
        size = min(1_000, count - start)
        await service.enqueue_many([EnqueueRequest(type=job_type) for _ in range(size)])
        leases = await store.claim([job_type], limit=size, lease_ms=600_000)
        outcomes = [
            Outcome(job_id=lease.job.id, token=lease.token, kind=OutcomeKind.FAIL, error="boom")
            for lease in leases
        ]
        await store.settle(outcomes)


async def count(store: JobStore, job_type: str, status: JobStatus) -> int:
    total, cursor = 0, ""
    while True:
        page = await store.list_jobs(
            JobQuery(type=job_type, status=status, limit=1_000, cursor=cursor)
        )
        total += len(page.jobs)
        cursor = page.next_cursor
        if not cursor:
            return total


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    need_chromium()
    thread = ServerThread(
        {
            "JOBQUEUE_DASHBOARD_TOKEN": ADMIN_TOKEN,
            "JOBQUEUE_DASHBOARD_READONLY_TOKEN": READER_TOKEN,
            "JOBQUEUE_DASHBOARD_SECRET": "browser-test-secret-0123456789",
            "JOBQUEUE_DASHBOARD_PAGE_SIZE": "20",
        }
    )
    thread.start()
    try:
        thread.call(fail_all(thread.service, thread.store, BULK_TYPE, MANY))
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
    page.goto(server.url + "/login")
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Overview")


def a_failed_job(server: ServerThread) -> Job:
    server.call(fail_all(server.service, server.store, "single.job", 1))
    failed = server.call(
        server.store.list_jobs(JobQuery(type="single.job", status=JobStatus.FAILED, limit=1))
    )
    return failed.jobs[0]


def test_retry_then_delete_from_the_job_page(server: ServerThread, context: BrowserContext) -> None:
    watched = Watched(context.new_page())
    log_in(watched, server, ADMIN_TOKEN)
    job = a_failed_job(server)
    page = watched.page
    page.goto(f"{server.url}/jobs/{job.id}")
    expect(page.locator("#job-status")).to_contain_text("failed")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#retry")
    expect(page.locator("#job-status")).to_contain_text("pending")
    expect(page.locator("#retry")).to_have_count(0)
    server.call(server.service.cancel(job.id))
    page.reload()
    expect(page.locator("#job-status")).to_contain_text("cancelled")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#delete")
    expect(page).to_have_url(re.compile(r"/dashboard/cancelled\?notice="))
    expect(page.locator("#notice")).to_have_text(f"Deleted job {job.id}.")
    assert server.call(server.store.get(job.id)) is None
    watched.assert_clean()


def test_the_read_only_login_sees_no_bulk_actions(
    server: ServerThread, context: BrowserContext
) -> None:
    watched = Watched(context.new_page())
    log_in(watched, server, READER_TOKEN)
    page = watched.page
    page.goto(f"{server.url}/failed?type={BULK_TYPE}")
    expect(page.locator("h1")).to_have_text("Failed jobs")
    expect(page.locator("#bulk-retry")).to_have_count(0)
    expect(page.locator("#bulk-delete")).to_have_count(0)
    watched.assert_clean()


def test_bulk_retry_of_ten_thousand_failed_jobs_within_ten_seconds(
    server: ServerThread, context: BrowserContext
) -> None:
    assert server.call(count(server.store, BULK_TYPE, JobStatus.FAILED)) == MANY
    watched = Watched(context.new_page())
    log_in(watched, server, ADMIN_TOKEN)
    page = watched.page
    page.goto(f"{server.url}/failed?type={BULK_TYPE}")
    expect(page.locator("#bulk-retry")).to_contain_text(BULK_TYPE)
    page.once("dialog", lambda dialog: dialog.accept())
    started = time.monotonic()
    page.click("#bulk-retry")
    expect(page.locator("#notice")).to_have_text(
        f"Retried {MANY} of {MANY} matching jobs.", timeout=BULK_BUDGET_S * 1000
    )
    elapsed = time.monotonic() - started
    print(f"bulk retry of {MANY} failed jobs from the dashboard: {elapsed:.2f} s")
    assert elapsed <= BULK_BUDGET_S
    assert server.call(count(server.store, BULK_TYPE, JobStatus.FAILED)) == 0
    assert server.call(count(server.store, BULK_TYPE, JobStatus.PENDING)) == MANY
    expect(page.locator(".empty")).to_have_text("No job matches.")
    watched.assert_clean()

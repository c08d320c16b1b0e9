"""The workers page in a real Chromium (Debian's), against the real server App.

A worker heartbeats through the server's own presence use case; the page
lists it, the menu reaches it, the job types page flags a type with due jobs
and no live worker, and nothing logs a console error or a CSP violation.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, expect, sync_playwright

from jobqueue.domain import PresenceService, SystemClock, WorkerInfo

from ._browser import CHROMIUM, ServerThread, Watched, need_chromium, save_screenshot
from .conftest import ADMIN_TOKEN

pytestmark = pytest.mark.e2e

WORKER_ID = "web-7-1234-c0ffee00"


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    need_chromium()
    thread = ServerThread(
        {
            "JOBQUEUE_DASHBOARD_TOKEN": ADMIN_TOKEN,
            "JOBQUEUE_DASHBOARD_SECRET": "browser-test-secret-0123456789",
        }
    )
    thread.start()
    try:
        presence: PresenceService = thread.container.presence_service()
        worker = WorkerInfo(
            id=WORKER_ID,
            host="web-7",
            pid=1234,
            sdk="jobqueue-python/0.1.0",
            types=("email.send", "image.resize"),
            concurrency=16,
            busy=5,
            started_at_ms=SystemClock().now_ms() - 3_600_000,
        )
        thread.call(presence.heartbeat(worker, ttl_ms=600_000))
        for job_type in ("email.send", "email.send", "report.build"):
            thread.call(thread.service.enqueue(job_type, b"{}"))
        yield thread
    finally:
        thread.stop()


@pytest.fixture
def context() -> Iterator[BrowserContext]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
        )
        context = browser.new_context(viewport={"width": 1280, "height": 860})
        yield context
        context.close()
        browser.close()


def test_the_workers_page_and_the_no_worker_flag(
    server: ServerThread, context: BrowserContext, tmp_path: Path
) -> None:
    watched = Watched(context.new_page())
    page = watched.page
    page.goto(server.url + "/")
    expect(page).to_have_url(re.compile(r"/dashboard/login$"))
    page.fill("input[name=token]", ADMIN_TOKEN)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Overview")
    expect(page.locator("#workers-alive")).to_have_text("1")
    expect(page.locator("#unattended")).to_contain_text("report.build")

    page.click("header nav >> text='Workers'")
    expect(page.locator("h1")).to_have_text("Workers")
    row = page.locator(f"#worker-{WORKER_ID}")
    expect(row).to_contain_text("web-7")
    expect(row).to_contain_text("5 / 16")
    expect(row).to_contain_text("jobqueue-python/0.1.0")
    expect(page.locator("#workers-summary")).to_have_text("1 live worker, 5 of 16 slots busy.")
    save_screenshot(page, "dashboard-workers", tmp_path)

    page.click("header nav >> text='Job types'")
    expect(page.locator("#no-worker-report\\.build")).to_have_text("no worker")
    expect(page.locator("#no-worker-email\\.send")).to_have_count(0)
    # A worker's type links to its jobs.
    page.click("header nav >> text='Workers'")
    page.click(f"#worker-{WORKER_ID} >> text='image.resize'")
    expect(page).to_have_url(re.compile(r"/dashboard/jobs\?type=image.resize$"))
    watched.assert_clean()

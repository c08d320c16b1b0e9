"""The schedules page in a real Chromium (Debian's), against the real server App.

The App's own ScheduleService (the one its firing loop and its API use) holds
the schedules; the page lists them, and pause, resume, trigger and delete go
through their forms (the confirm dialogs accepted), with no console error or
CSP violation on the way.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import BrowserContext, Dialog, expect, sync_playwright

from jobqueue.domain import JobQuery, JobTemplate, ScheduleService

from ._browser import CHROMIUM, ServerThread, Watched, need_chromium
from .conftest import ADMIN_TOKEN

pytestmark = pytest.mark.e2e


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
        yield thread
    finally:
        thread.stop()


def schedules_of(server: ServerThread) -> ScheduleService:
    # The App's own service: the memory store keeps schedules per service.
    service = server.app._schedules
    assert service is not None
    return service


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


def test_the_schedules_page_and_its_actions(server: ServerThread, context: BrowserContext) -> None:
    schedules = schedules_of(server)
    made = server.call(
        schedules.create(
            name="nightly report",
            template=JobTemplate(type="report.build"),
            cron="30 2 * * *",
            time_zone="Europe/Paris",
        )
    )
    watched = Watched(context.new_page())
    page = watched.page
    dialogs: list[str] = []

    def accept(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    page.goto(server.url + "/")
    expect(page).to_have_url(re.compile(r"/dashboard/login$"))
    page.fill("input[name=token]", ADMIN_TOKEN)
    page.click("button[type=submit]")
    page.click("header nav >> text='Schedules'")
    expect(page.locator("h1")).to_have_text("Schedules")
    row = page.locator(f"#schedule-{made.id}")
    expect(row).to_contain_text("nightly report")
    expect(row).to_contain_text("cron 30 2 * * * (Europe/Paris)")
    expect(row.locator(".schedule-state")).to_have_text("active")

    row.locator("button.pause").click()
    expect(page.locator("#notice")).to_have_text("Paused schedule nightly report.")
    expect(row.locator(".schedule-state")).to_have_text("paused")
    row.locator("button.resume").click()
    expect(page.locator("#notice")).to_have_text(
        "Resumed schedule nightly report: it fires from now on."
    )
    expect(row.locator(".schedule-state")).to_have_text("active")

    row.locator("button.trigger").click()
    expect(page.locator("#notice")).to_contain_text(f"Triggered schedule {made.id}: job ")
    jobs = server.call(server.store.list_jobs(JobQuery(type="report.build")))
    assert len(jobs.jobs) == 1

    row.locator("button.delete").click()
    expect(page.locator("#notice")).to_have_text(f"Deleted schedule {made.id}; its jobs stay.")
    expect(page.locator(f"#schedule-{made.id}")).to_have_count(0)
    assert dialogs == [
        "Enqueue the job of schedule nightly report now?",
        "Delete schedule nightly report? Its jobs stay.",
    ]
    assert server.call(schedules.list_schedules()) == []
    watched.assert_clean()

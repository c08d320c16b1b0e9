"""Every page renders from the real use cases, on each store, under the strict CSP."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx2
import pytest

from jobqueue.dashboard import SECURITY_HEADERS, Dashboard
from jobqueue.domain import (
    JobService,
    JobStatus,
    JobStore,
    QueueStats,
    StoreUnavailable,
    SystemClock,
    UuidV7Generator,
)
from jobqueue.memory import MemoryJobStore

from .conftest import BASE, client_of, csrf_of, seed

CSP = dict(SECURITY_HEADERS)[b"content-security-policy"].decode()


async def test_every_page_renders_with_the_csp(
    service: JobService, store: JobStore, dashboard_for: Callable[..., Dashboard]
) -> None:
    jobs = await seed(service, store)
    dashboard = dashboard_for()
    await dashboard.sample_once()
    await dashboard.sample_once()
    async with client_of(dashboard) as client:
        pages = {
            "/": ["Queue depth", "<svg", "polyline"],
            "/types": ["email", "report", "resize"],
            "/jobs": [jobs.pending.id, jobs.running.id, jobs.failed.id],
            "/failed": [jobs.failed.id, "SMTP 550: mailbox &lt;unknown&gt;"],
            "/cancelled": [jobs.cancelled.id],
            "/scheduled": [jobs.scheduled.id],
            f"/jobs/{jobs.completed.id}": [
                "&#34;month&#34;: &#34;2026-11&#34;",
                "&#34;ok&#34;: true",
            ],
            f"/jobs/{jobs.running.id}": ["00000000  89 50 4e 47", "Cancel job"],
        }
        for path, expected in pages.items():
            response = await client.get(BASE + path)
            assert response.status_code == 200, path
            assert response.headers["content-security-policy"] == CSP
            assert "style=" not in response.text, path
            assert "<script>" not in response.text, path
            for text in expected:
                assert text in response.text, (path, text)
        # Static files carry the CSP too, and nothing is fetched from elsewhere.
        for name in ("htmx.min.js", "dashboard.js", "dashboard.css"):
            response = await client.get(f"{BASE}/static/{name}")
            assert response.status_code == 200
            assert response.headers["content-security-policy"] == CSP


async def test_the_failed_page_shows_only_failed_jobs(
    service: JobService, store: JobStore, dashboard_for: Callable[..., Dashboard]
) -> None:
    jobs = await seed(service, store)
    async with client_of(dashboard_for()) as client:
        text = (await client.get(BASE + "/failed")).text
    assert jobs.failed.id in text
    for other in (jobs.pending, jobs.running, jobs.completed, jobs.cancelled):
        assert other.id not in text


async def test_filters_and_cursor_paging_walk_every_match_once(
    service: JobService, dashboard_for: Callable[..., Dashboard]
) -> None:
    ids = {(await service.enqueue("bulk", b"{}")).id for _ in range(7)}
    await service.enqueue("other", b"{}")
    dashboard = dashboard_for(page_size=3)
    seen: list[str] = []
    async with client_of(dashboard) as client:
        url = BASE + "/jobs?type=bulk&status=pending"
        for _ in range(5):
            text = (await client.get(url)).text
            seen += [i for i in ids if f">{i}</a>" in text]
            if 'id="next-page"' not in text:
                break
            start = text.index('id="next-page" href="') + len('id="next-page" href="')
            url = "http://testserver" + text[start : text.index('"', start)].replace("&amp;", "&")
    assert sorted(seen) == sorted(ids)


async def test_a_time_range_starts_and_stops_the_listing(
    service: JobService, dashboard_for: Callable[..., Dashboard]
) -> None:
    early = await service.enqueue("timed", b"", execution_time_ms=1_893_456_000_000)  # 2030-01-01
    late = await service.enqueue("timed", b"", execution_time_ms=1_924_992_000_000)  # 2031-01-01
    async with client_of(dashboard_for()) as client:
        url = BASE + "/jobs?type=timed&status=pending"
        since = (await client.get(url + "&since=2030-06-01T00:00")).text
        until = (await client.get(url + "&until=2030-06-01T00:00")).text
        both = (await client.get(url + "&since=2029-12-31&until=2031-01-01T00:00Z")).text
        untyped = await client.get(BASE + "/jobs?status=pending&since=2030-06-01T00:00")
        running = await client.get(BASE + "/jobs?type=timed&status=running&since=2030-06-01")
        malformed = await client.get(url + "&since=next+tuesday")
    assert late.id in since
    assert early.id not in since
    assert early.id in until
    assert late.id not in until
    assert early.id in both
    assert late.id in both
    assert untyped.status_code == running.status_code == malformed.status_code == 400


async def test_the_scheduled_page_lists_only_future_jobs_of_the_chosen_type(
    service: JobService, dashboard_for: Callable[..., Dashboard]
) -> None:
    due = await service.enqueue("later", b"")
    future = await service.enqueue("later", b"", execution_time_ms=1_893_456_000_000)
    other = await service.enqueue("elsewhere", b"", execution_time_ms=1_893_456_000_000)
    async with client_of(dashboard_for()) as client:
        text = (await client.get(BASE + "/scheduled?type=later")).text
    assert future.id in text
    assert due.id not in text
    assert other.id not in text
    assert "elsewhere (1)" in text


async def test_the_types_page_shows_the_oldest_pending_age(
    service: JobService, dashboard_for: Callable[..., Dashboard]
) -> None:
    # Due in 2001, enqueued now: it has waited since it was enqueued, not 25 years.
    await service.enqueue("aged", b"", execution_time_ms=1_000_000_000_000)
    async with client_of(dashboard_for()) as client:
        text = (await client.get(BASE + "/types")).text
    row = text[text.index(">aged</a>") :]
    row = row[: row.index("</tr>")]
    assert re.search(r'<td class="num">\d+(\.\d+)? m?s</td>', row), row
    assert " d " not in row


async def test_an_id_search_opens_the_job_and_bad_input_gets_its_status(
    service: JobService, dashboard_for: Callable[..., Dashboard]
) -> None:
    job = await service.enqueue("t", b"")
    async with client_of(dashboard_for()) as client:
        found = await client.get(BASE + f"/jobs?id={job.id}")
        by_htmx = await client.get(BASE + f"/jobs?id={job.id}", headers={"HX-Request": "true"})
        missing = await client.get(BASE + "/jobs/01890000-0000-7000-8000-000000000000")
        malformed = await client.get(BASE + "/jobs/not-an-id")
        bad_status = await client.get(BASE + "/jobs?status=sleeping")
        bad_cursor = await client.get(BASE + "/jobs?cursor=forged")
        nowhere = await client.get(BASE + "/nowhere")
        bare = await client.get("http://testserver/dashboard")
    assert found.status_code == 303
    assert found.headers["location"] == f"/dashboard/jobs/{job.id}"
    assert by_htmx.headers["hx-redirect"] == f"/dashboard/jobs/{job.id}"
    assert missing.status_code == 404
    assert malformed.status_code == bad_status.status_code == bad_cursor.status_code == 400
    assert nowhere.status_code == 404
    assert nowhere.headers["content-security-policy"] == CSP
    assert bare.status_code == 308
    assert bare.headers["location"] == "/dashboard/"


async def test_a_finished_jobs_live_stream_sends_it_then_ends(
    service: JobService, store: JobStore, dashboard_for: Callable[..., Dashboard]
) -> None:
    jobs = await seed(service, store)
    async with client_of(dashboard_for()) as client:
        response = await client.get(BASE + f"/live/jobs/{jobs.failed.id}")
    assert response.headers["content-type"].startswith("text/event-stream")
    events = response.text.split("\n\n")
    assert events[0].startswith("retry: ")
    assert events[1].startswith("event: refresh\ndata: ")
    assert "SMTP 550" in events[1]
    assert events[2] == "event: done\ndata: "


async def test_live_streams_end_when_the_dashboard_closes(
    service: JobService, dashboard_for: Callable[..., Dashboard]
) -> None:
    job = await service.enqueue("t", b"")
    dashboard = dashboard_for()
    dashboard.close()
    async with client_of(dashboard) as client:
        overview = await client.get(BASE + "/live/overview")
        watching = await client.get(BASE + f"/live/jobs/{job.id}")
    assert overview.status_code == watching.status_code == 200
    assert "event: refresh" not in overview.text


@pytest.mark.parametrize("state", ["pending", "running"])
async def test_cancel_from_the_page(
    state: str, service: JobService, store: JobStore, dashboard_for: Callable[..., Dashboard]
) -> None:
    jobs = await seed(service, store)
    job = jobs.pending if state == "pending" else jobs.running
    async with client_of(dashboard_for()) as client:
        page = await client.get(BASE + f"/jobs/{job.id}")
        response = await client.post(
            BASE + f"/jobs/{job.id}/cancel", data={"csrf_token": csrf_of(page.text)}
        )
        again = await client.post(
            BASE + f"/jobs/{jobs.completed.id}/cancel", data={"csrf_token": csrf_of(page.text)}
        )
    assert response.status_code == 303
    after = await service.get(job.id)
    if state == "pending":
        assert after.status is JobStatus.CANCELLED
    else:
        assert after.cancel_requested
    assert again.status_code == 409


class FailingStore(MemoryJobStore):
    """A store whose stats fail the way it is told: a fake at the port, no patching."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    async def stats(self) -> QueueStats:
        raise self.error


@pytest.mark.parametrize(
    ("error", "code"), [(RuntimeError("disk on fire"), 500), (StoreUnavailable("down"), 503)]
)
async def test_a_failing_store_gives_an_error_page_that_still_carries_the_csp(
    error: Exception, code: int
) -> None:
    service = JobService(FailingStore(error), clock=SystemClock(), ids=UuidV7Generator())
    dashboard = Dashboard(service, clock=SystemClock())
    transport = httpx2.ASGITransport(app=dashboard.app, raise_app_exceptions=False)
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get(BASE + "/types")
    assert response.status_code == code
    assert response.headers["content-security-policy"] == CSP
    assert "disk on fire" not in response.text  # no internals on the page

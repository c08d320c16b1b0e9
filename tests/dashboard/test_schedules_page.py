"""The schedules page on each store: the list, and pause/resume/trigger/delete guarded as
every dashboard action is (CSRF first, then an admin login; a reader changes nothing)."""

from __future__ import annotations

import logging

import pytest

from jobqueue.dashboard import Dashboard, DashboardSettings
from jobqueue.domain import (
    JobQuery,
    JobService,
    JobStatus,
    JobStore,
    JobTemplate,
    ScheduleService,
    SystemClock,
    UuidV7Generator,
)
from jobqueue_server._schedules import schedule_service_for

from .conftest import ADMIN_TOKEN, BASE, READER_TOKEN, client_of, csrf_of
from .test_auth import log_in


@pytest.fixture
def schedules(store: JobStore) -> ScheduleService:
    service = schedule_service_for(store, clock=SystemClock(), ids=UuidV7Generator())
    assert service is not None
    return service


def dashboard(service: JobService, schedules: ScheduleService | None, **settings: str) -> Dashboard:
    return Dashboard(
        service,
        clock=SystemClock(),
        settings=DashboardSettings(secret="s" * 32, **settings),  # type: ignore[arg-type]
        schedules=schedules,
    )


async def test_the_page_lists_each_schedule_with_its_next_tick_and_state(
    service: JobService, schedules: ScheduleService
) -> None:
    nightly = await schedules.create(
        name="nightly <report>",
        template=JobTemplate(type="report"),
        cron="30 2 * * *",
        time_zone="Europe/Paris",
    )
    ping = await schedules.create(
        name="ping", template=JobTemplate(type="ping"), interval_ms=90_000, paused=True
    )
    async with client_of(dashboard(service, schedules)) as client:
        unplanned = (await client.get(BASE + "/schedules")).text
        assert "not planned yet" in unplanned
        await schedules.fire_due()  # the server's firing loop plans each next tick
        page = await client.get(BASE + "/schedules")
    assert page.status_code == 200
    html = page.text
    assert f'href="{BASE.removeprefix("http://testserver")}/schedules"' in html  # the menu
    assert "nightly &lt;report&gt;" in html
    assert "<td>cron 30 2 * * * (Europe/Paris)</td>" in html
    assert "<td>every 1 min 30 s</td>" in html
    row = html[html.index(f'id="schedule-{nightly.id}"') :]
    assert "active" in row[: row.index("</tr>")]
    assert "(in " in row[: row.index("</tr>")]  # its next tick, ahead
    assert "never" in row[: row.index("</tr>")]  # not fired yet
    paused = html[html.index(f'id="schedule-{ping.id}"') :]
    assert '<span class="warn">paused</span>' in paused[: paused.index("</tr>")]
    assert f"/schedules/{ping.id}/resume" in html
    assert f"/schedules/{nightly.id}/pause" in html


async def test_pause_resume_trigger_delete_from_the_page(
    service: JobService,
    store: JobStore,
    schedules: ScheduleService,
    caplog: pytest.LogCaptureFixture,
) -> None:
    made = await schedules.create(
        name="hourly", template=JobTemplate(type="sched_page"), interval_ms=3_600_000
    )
    caplog.set_level(logging.INFO, logger="jobqueue.dashboard.audit")
    async with client_of(dashboard(service, schedules, token=ADMIN_TOKEN)) as client:
        await log_in(client, ADMIN_TOKEN)
        token = csrf_of((await client.get(BASE + "/schedules")).text)
        paused = await client.post(f"{BASE}/schedules/{made.id}/pause", data={"csrf_token": token})
        assert paused.status_code == 303
        assert (await schedules.get(made.id)).paused
        shown = await client.get(paused.headers["location"])
        assert 'role="status">Paused schedule hourly.</p>' in shown.text
        await client.post(f"{BASE}/schedules/{made.id}/resume", data={"csrf_token": token})
        assert not (await schedules.get(made.id)).paused
        triggered = await client.post(
            f"{BASE}/schedules/{made.id}/trigger", data={"csrf_token": token}
        )
        (job,) = (await store.list_jobs(JobQuery(type="sched_page"))).jobs
        assert job.status is JobStatus.PENDING
        notice = (await client.get(triggered.headers["location"])).text
        assert f"Triggered schedule {made.id}: job {job.id}." in notice
        deleted = await client.post(
            f"{BASE}/schedules/{made.id}/delete", data={"csrf_token": token}
        )
        assert deleted.status_code == 303
        assert await schedules.list_schedules() == []
        gone = await client.post(f"{BASE}/schedules/{made.id}/pause", data={"csrf_token": token})
        assert gone.status_code == 404
        bad = await client.post(f"{BASE}/schedules/not-an-id/pause", data={"csrf_token": token})
        assert bad.status_code == 400
    messages = [record.getMessage() for record in caplog.records]
    for action in ("pause", "resume", "trigger", "delete"):
        assert f"dashboard admin: {action} schedule {made.id}" in messages


async def test_without_csrf_or_as_a_reader_nothing_changes(
    service: JobService, store: JobStore, schedules: ScheduleService
) -> None:
    made = await schedules.create(
        name="kept", template=JobTemplate(type="kept"), interval_ms=60_000
    )
    settings = {"token": ADMIN_TOKEN, "readonly_token": READER_TOKEN}
    async with client_of(dashboard(service, schedules, **settings)) as client:
        await log_in(client, ADMIN_TOKEN)
        for action in ("pause", "trigger", "delete"):
            refused = await client.post(
                f"{BASE}/schedules/{made.id}/{action}", data={"csrf_token": "forged"}
            )
            assert refused.status_code == 403
    async with client_of(dashboard(service, schedules, **settings)) as client:
        await log_in(client, READER_TOKEN)
        page = await client.get(BASE + "/schedules")
        assert "kept" in page.text
        assert f"/schedules/{made.id}/pause" not in page.text  # no buttons for a reader
        for action in ("pause", "trigger", "delete"):
            refused = await client.post(
                f"{BASE}/schedules/{made.id}/{action}", data={"csrf_token": csrf_of(page.text)}
            )
            assert refused.status_code == 403
            assert "read-only" in refused.text
    assert await schedules.list_schedules() == [await schedules.get(made.id)]
    assert not (await schedules.get(made.id)).paused
    assert (await store.list_jobs(JobQuery(type="kept"))).jobs == []  # nothing triggered


async def test_a_server_without_schedules_says_so(service: JobService) -> None:
    async with client_of(dashboard(service, None, token=ADMIN_TOKEN)) as client:
        await log_in(client, ADMIN_TOKEN)
        page = await client.get(BASE + "/schedules")
        assert "This server does not keep schedules." in page.text
        refused = await client.post(
            f"{BASE}/schedules/0190f0f0-0000-7000-8000-000000000000/trigger",
            data={"csrf_token": csrf_of(page.text)},
        )
        assert refused.status_code == 404

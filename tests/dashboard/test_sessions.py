"""Sessions tied to their login token, the login rate limit, the audit log, signed notices."""

from __future__ import annotations

import json
import logging
from base64 import b64decode, b64encode
from collections.abc import Callable
from typing import cast

import httpx2
import pytest
from itsdangerous import TimestampSigner

from jobqueue.dashboard import Dashboard, DashboardSettings
from jobqueue.dashboard._login_limit import LoginLimiter
from jobqueue.domain import AdminService, AdminStore, JobService, JobStore, ManualClock

from .conftest import ADMIN_TOKEN, BASE, READER_TOKEN, client_of, csrf_of
from .test_admin_actions import failed_jobs
from .test_auth import log_in

SECRET = "s" * 32
COOKIE = "jobqueue_dashboard"


def session_of(client: httpx2.AsyncClient) -> dict[str, object]:
    """The session a cookie holds (signed, not encrypted: anyone can read it)."""
    signed = client.cookies[COOKIE]
    data = TimestampSigner(SECRET).unsign(signed)
    return cast(dict[str, object], json.loads(b64decode(data)))


def forged(session: dict[str, object]) -> str:
    """A cookie signed with the right secret, as a holder of the secret could make one."""
    return TimestampSigner(SECRET).sign(b64encode(json.dumps(session).encode())).decode()


async def test_rotating_a_token_ends_the_sessions_it_opened(
    service: JobService, dashboard_for: Callable[..., Dashboard]
) -> None:
    before = dashboard_for(token=ADMIN_TOKEN, readonly_token=READER_TOKEN, secret=SECRET)
    cookies = {}
    for token in (ADMIN_TOKEN, READER_TOKEN):
        async with client_of(before) as client:
            assert (await log_in(client, token)).status_code == 303
            assert (await client.get(BASE + "/")).status_code == 200
            cookies[token] = client.cookies[COOKIE]
            assert token not in json.dumps(session_of(client))
    # Restarted with a new admin token and the same secret: the cookies still verify.
    after = dashboard_for(
        token="rotated-" + ADMIN_TOKEN, readonly_token=READER_TOKEN, secret=SECRET
    )
    async with client_of(after) as client:
        client.cookies.set(COOKIE, cookies[ADMIN_TOKEN])
        response = await client.get(BASE + "/")
        assert response.status_code == 303
        assert response.headers["location"] == "/dashboard/login"
    async with client_of(after) as client:
        client.cookies.set(COOKIE, cookies[READER_TOKEN])
        assert (await client.get(BASE + "/")).status_code == 200


async def test_a_session_cannot_claim_a_role_its_token_does_not_grant(
    service: JobService, dashboard_for: Callable[..., Dashboard]
) -> None:
    dashboard = dashboard_for(token=ADMIN_TOKEN, readonly_token=READER_TOKEN, secret=SECRET)
    async with client_of(dashboard) as client:
        await log_in(client, READER_TOKEN)
        session = session_of(client)
    assert session["role"] == "reader"
    bad_sessions: list[dict[str, object]] = [
        {**session, "role": "admin"},  # the reader's token mark, the admin's role
        {"role": "admin", "csrf": "x"},  # a session from before sessions named their token
        {**session, "token": "0" * 64},
    ]
    for bad in bad_sessions:
        async with client_of(dashboard) as client:
            client.cookies.set(COOKIE, forged(bad))
            assert (await client.get(BASE + "/")).status_code == 303, bad


async def test_ten_failed_logins_a_minute_then_429_for_that_address_only(
    service: JobService, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock()
    dashboard = Dashboard(
        service,
        clock=clock,
        settings=DashboardSettings(token=ADMIN_TOKEN, secret=SECRET),
    )
    async with client_of(dashboard) as client:
        for _ in range(10):
            assert (await log_in(client, "guess")).status_code == 401
        refused = await log_in(client, ADMIN_TOKEN)
        assert refused.status_code == 429
        for _ in range(50):  # refused before the token is even compared
            assert (await log_in(client, "guess")).status_code == 429
        assert "Too many failed logins" in refused.text
        assert (await client.get(BASE + "/")).status_code == 303  # no session
        other = httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=dashboard.app, client=("127.0.0.2", 1)),
            base_url="http://testserver",
        )
        async with other:
            assert (await log_in(other, ADMIN_TOKEN)).status_code == 303
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        # One line per failure and one when the address is blocked; the refused 51 add none.
        assert len(warnings) == 11
        assert warnings[-1] == "dashboard logins from 127.0.0.1 refused for a minute"
        clock.advance(59_999)
        assert (await log_in(client, ADMIN_TOKEN)).status_code == 429
        clock.advance(1)  # the first failure leaves the minute
        assert (await log_in(client, ADMIN_TOKEN)).status_code == 303
        assert (await client.get(BASE + "/")).status_code == 200


def test_the_limiter_forgets_the_longest_idle_address_past_its_bound() -> None:
    limiter = LoginLimiter(max_failures=2, window_ms=1_000, max_addresses=3)
    for address in ("a", "b", "c", "d"):
        limiter.failed(address, 0)
        limiter.failed(address, 1)
    assert len(limiter) == 3
    assert not limiter.blocked("a", 2)  # forgotten: its failures went with it
    assert limiter.blocked("d", 2)
    assert not limiter.blocked("d", 1_001)  # one failure left in the window
    assert limiter.blocked("b", 999)
    assert not limiter.blocked("b", 1_000)  # the failure at 0 has left the window


async def test_failed_logins_and_admin_actions_are_logged(
    service: JobService, store: JobStore, caplog: pytest.LogCaptureFixture
) -> None:
    assert isinstance(store, AdminStore)
    dashboard = Dashboard(
        service,
        clock=ManualClock(),
        settings=DashboardSettings(token=ADMIN_TOKEN, secret=SECRET),
        admin=AdminService(cast(AdminStore, store)),
    )
    await failed_jobs(service, store, "audited", 3)
    caplog.set_level(logging.INFO, logger="jobqueue.dashboard.audit")
    async with client_of(dashboard) as client:
        await log_in(client, "wrong-" + ADMIN_TOKEN)
        await log_in(client, ADMIN_TOKEN)
        page = await client.get(BASE + "/failed?type=audited")
        form = {"csrf_token": csrf_of(page.text), "type": "audited", "since": "", "until": ""}
        done = await client.post(BASE + "/failed/bulk", data={**form, "action": "retry"})
        assert done.status_code == 303
    records = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert (logging.WARNING, "dashboard login failed from 127.0.0.1: wrong token") in records
    assert (
        logging.INFO,
        "dashboard admin: bulk retry type=audited status=FAILED updated_before_ms=- "
        "matched=3 changed=3",
    ) in records
    assert not any(ADMIN_TOKEN in message for _, message in records)


async def test_a_notice_shows_only_if_the_dashboard_wrote_it(
    service: JobService, store: JobStore
) -> None:
    assert isinstance(store, AdminStore)
    dashboard = Dashboard(
        service,
        clock=ManualClock(),
        settings=DashboardSettings(secret=SECRET),
        admin=AdminService(cast(AdminStore, store)),
    )
    await failed_jobs(service, store, "noticed", 2)
    async with client_of(dashboard) as client:
        page = await client.get(BASE + "/failed?notice=Your+account+is+locked%2C+call+555")
        assert page.status_code == 200
        assert "Your account is locked" not in page.text
        assert 'id="notice"' not in page.text
        form = {"csrf_token": csrf_of(page.text), "type": "noticed", "since": "", "until": ""}
        done = await client.post(BASE + "/failed/bulk", data={**form, "action": "delete"})
        shown = await client.get(done.headers["location"])
        assert 'role="status">Deleted 2 of 2 matching jobs.</p>' in shown.text
        # Signed by another dashboard's secret: not this one's words either.
        other = Dashboard(service, clock=ManualClock(), settings=DashboardSettings(secret="t" * 32))
        value = done.headers["location"].split("notice=")[1]
        async with client_of(other) as stranger:
            assert 'id="notice"' not in (await stranger.get(f"{BASE}/failed?notice={value}")).text

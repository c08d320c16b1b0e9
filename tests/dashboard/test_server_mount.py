"""jobqueue-server mounts the dashboard on its HTTP port, beside the API, and never opens it
beside an API that needs a token."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request

import pytest
from pydantic import SecretStr

from jobqueue.memory import MemoryJobStore
from jobqueue_server import App, Container, ServerSettings

from .conftest import ADMIN_TOKEN


def fetch(url: str) -> tuple[int, str, str]:
    """Status, final URL and body of a GET (redirects followed)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.url, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, url, error.read().decode()


async def serve(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], **settings: object) -> App:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    container = Container()
    container.settings.override(ServerSettings(host="127.0.0.1", port=0, **settings))  # type: ignore[arg-type]
    container.store.override(MemoryJobStore())
    app = App(container)
    await app.start()
    return app


async def test_the_dashboard_shares_the_api_port(monkeypatch: pytest.MonkeyPatch) -> None:
    app = await serve(monkeypatch, {})
    try:
        base = f"http://127.0.0.1:{app.port}"
        status, _, body = await asyncio.to_thread(fetch, base + "/dashboard/")
        health = await asyncio.to_thread(fetch, base + "/healthz")
        other = await asyncio.to_thread(fetch, base + "/dashboardx")
    finally:
        await app.stop()
    assert status == 200
    assert "Queue depth" in body
    assert health[:1] == (200,)
    assert other[0] == 404  # the wire app's answer: not a dashboard path


async def test_with_a_dashboard_token_pages_ask_for_a_login(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = await serve(
        monkeypatch,
        {"JOBQUEUE_DASHBOARD_TOKEN": ADMIN_TOKEN},
        auth_token=SecretStr("api-token-0123456789abcdef"),
    )
    try:
        status, url, body = await asyncio.to_thread(
            fetch, f"http://127.0.0.1:{app.port}/dashboard/"
        )
    finally:
        await app.stop()
    assert status == 200
    assert url.endswith("/dashboard/login")
    assert "Dashboard token" in body


async def test_an_api_token_without_a_dashboard_token_keeps_the_dashboard_off(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("JOBQUEUE_DASHBOARD_TOKEN", raising=False)
    monkeypatch.delenv("JOBQUEUE_DASHBOARD_READONLY_TOKEN", raising=False)
    app = await serve(monkeypatch, {}, auth_token=SecretStr("api-token-0123456789abcdef"))
    try:
        status, _, _ = await asyncio.to_thread(fetch, f"http://127.0.0.1:{app.port}/dashboard/")
    finally:
        await app.stop()
    assert status == 404
    assert "dashboard off" in caplog.text


async def test_a_disabled_dashboard_is_not_served(monkeypatch: pytest.MonkeyPatch) -> None:
    app = await serve(monkeypatch, {"JOBQUEUE_DASHBOARD_ENABLED": "false"})
    try:
        status, _, _ = await asyncio.to_thread(fetch, f"http://127.0.0.1:{app.port}/dashboard/")
    finally:
        await app.stop()
    assert status == 404

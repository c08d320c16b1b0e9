"""A jobqueue-server App on its own event loop thread, and a Chromium page that reports problems.

The App is the real server (container, wire app, dashboard mounted on its
HTTP port, memory store); tests seed it through its own JobService on its
loop, as an API call would.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from playwright.sync_api import ConsoleMessage, Error, Page

from jobqueue.domain import JobService, JobStore
from jobqueue.memory import MemoryJobStore
from jobqueue_server import App, Container, ServerSettings

CHROMIUM = Path("/usr/bin/chromium")
T = TypeVar("T")


def need_chromium() -> None:
    """Skip without Debian's chromium; in CI (which installs it) fail instead."""
    if CHROMIUM.exists():
        return
    reason = "Debian's chromium is missing: `apt-get install -y chromium` (.ci/run does)"
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


class ServerThread:
    """``App`` started on a private loop in a daemon thread; ``call`` runs coroutines there."""

    def __init__(self, env: dict[str, str], **settings: Any) -> None:
        """``env``: what the dashboard reads at start; ``settings``: the server's own."""
        self._env = env
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.container = Container()
        self.container.settings.override(ServerSettings(host="127.0.0.1", port=0, **settings))
        self.store: JobStore = MemoryJobStore()
        self.container.store.override(self.store)
        self.app = App(self.container)

    @property
    def service(self) -> JobService:
        service: JobService = self.container.job_service()
        return service

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.app.port}/dashboard"

    @property
    def origin(self) -> str:
        """The API's origin (scheme, host, port), as a browser names it."""
        return f"http://127.0.0.1:{self.app.port}"

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=60)

    def start(self) -> None:
        self._thread.start()
        with pytest.MonkeyPatch.context() as patch:
            for name, value in self._env.items():
                patch.setenv(name, value)
            self.call(self.app.start())  # the dashboard reads its settings at start

    def stop(self) -> None:
        try:
            self.call(self.app.stop())
        finally:
            self.container.store.reset_override()
            self.container.settings.reset_override()
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()


@dataclass
class Watched:
    """A page's console errors, uncaught exceptions and CSP violations, collected as they come."""

    page: Page
    problems: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.problems.append(f"pageerror: {error}"))
        # Init scripts run through the DevTools protocol, outside the page's CSP.
        self.page.add_init_script(
            "window.__csp = [];"
            "document.addEventListener('securitypolicyviolation',"
            " e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
        )

    def _console(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            self.problems.append(f"console {message.type}: {message.text}")

    def csp_violations(self) -> list[str]:
        try:
            found: list[str] = self.page.evaluate("window.__csp || []")
        except Error:
            return []
        return found

    def assert_clean(self, *, allowed: tuple[str, ...] = ()) -> None:
        """No console error or warning (bar ``allowed`` substrings), no CSP violation."""
        problems = [p for p in self.problems if not any(a in p for a in allowed)]
        assert problems == []
        assert self.csp_violations() == []


def save_screenshot(page: Page, name: str, tmp_dir: Path) -> Path:
    """Into ``tmp_dir``; also into $JOBQUEUE_SCREENSHOTS_DIR when set (how docs/img is made)."""
    path = tmp_dir / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    target = os.environ.get("JOBQUEUE_SCREENSHOTS_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)
    return path

"""A browser app on another origin calls the API in a real Chromium (Debian's).

The page is served from its own loopback port, so the API on the server's
port is another origin: Chromium preflights the Connect call and reads its
answer only when the server lists the page's origin (JOBQUEUE_CORS_ORIGINS).
The call is what connect-es's Connect transport sends: a JSON POST with
``Connect-Protocol-Version``.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.dashboard._browser import CHROMIUM, ServerThread, need_chromium

pytestmark = pytest.mark.e2e

CALL = """async (api) => {
  try {
    const response = await fetch(api + "/mpataki.jobqueue.v1.JobService/EnqueueJob", {
      method: "POST",
      headers: {"Content-Type": "application/json", "Connect-Protocol-Version": "1"},
      body: JSON.stringify({type: "from-the-browser", payload: "e30="}),
    });
    const body = await response.json();
    return {status: response.status, type: body.job && body.job.type, code: body.code};
  } catch (error) {
    return {error: String(error)};
  }
}"""


class _Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<!doctype html><title>app</title><p>an app on its own origin</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def app_origin() -> Iterator[str]:
    """A page on 127.0.0.1 at a port of its own: an origin apart from the API's."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def page(app_origin: str) -> Iterator[Page]:
    need_chromium()
    with sync_playwright() as playwright:
        browser: Browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page()
        page.goto(app_origin + "/")
        yield page
        browser.close()


def api(**settings: Any) -> ServerThread:
    server = ServerThread({}, **settings)
    server.start()
    return server


def test_an_app_on_a_listed_origin_calls_the_api(page: Page, app_origin: str) -> None:
    server = api(cors_origins=app_origin)
    try:
        answer = page.evaluate(CALL, server.origin)
        assert answer == {"status": 200, "type": "from-the-browser", "code": None}
        stored = server.call(server.service.list_jobs(job_type="from-the-browser"))
        assert len(stored.jobs) == 1
    finally:
        server.stop()


def test_without_the_origin_listed_the_browser_refuses(page: Page, app_origin: str) -> None:
    for settings in ({}, {"cors_origins": "http://127.0.0.1:1"}):
        server = api(**settings)
        try:
            answer = page.evaluate(CALL, server.origin)
            assert "Failed to fetch" in answer.get("error", ""), answer
            # Refused at the preflight: the call itself was never sent.
            stored = server.call(server.service.list_jobs(job_type="from-the-browser"))
            assert not stored.jobs
        finally:
            server.stop()

"""Browser apps on other origins may call the API when the operator lists their origins.

The real server App (memory store) on a loopback port, spoken to with plain
HTTP as a browser would: the preflight, then the call. Chromium itself is in
``test_cors_browser.py``.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from jobqueue_server import ServerSettings
from jobqueue_server.__main__ import cli
from jobqueue_server._cors import parse_origins
from tests.dashboard._browser import ServerThread

APP = "http://app.example.com"
ENQUEUE = "/mpataki.jobqueue.v1.JobService/EnqueueJob"
BODY = json.dumps({"type": "email", "payload": "e30="}).encode()
CONNECT_JSON = {"Content-Type": "application/json", "Connect-Protocol-Version": "1"}


def request(
    server: ServerThread, method: str, path: str, headers: dict[str, str], body: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 request; the status, the headers (lower-cased names) and the body."""
    connection = http.client.HTTPConnection("127.0.0.1", server.app.port, timeout=10)
    try:
        connection.request(method, path, body=body or None, headers=headers)
        response = connection.getresponse()
        answer = {name.lower(): value for name, value in response.getheaders()}
        return response.status, answer, response.read()
    finally:
        connection.close()


def preflight(server: ServerThread, origin: str, headers: str) -> tuple[int, dict[str, str]]:
    status, answer, _ = request(
        server,
        "OPTIONS",
        ENQUEUE,
        {
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": headers,
        },
    )
    return status, answer


@pytest.fixture(scope="module")
def allowing() -> Iterator[ServerThread]:
    thread = ServerThread({}, cors_origins=f"{APP}, http://localhost:3000")
    thread.start()
    yield thread
    thread.stop()


@pytest.fixture(scope="module")
def default() -> Iterator[ServerThread]:
    thread = ServerThread({})
    thread.start()
    yield thread
    thread.stop()


def test_a_listed_origin_passes_the_preflight_with_connects_headers(
    allowing: ServerThread,
) -> None:
    status, answer = preflight(
        allowing, APP, "content-type,connect-protocol-version,connect-timeout-ms,authorization"
    )
    assert status == 200
    assert answer["access-control-allow-origin"] == APP
    assert {m.strip() for m in answer["access-control-allow-methods"].split(",")} >= {
        "GET",
        "POST",
    }
    allowed = {h.strip().lower() for h in answer["access-control-allow-headers"].split(",")}
    assert allowed >= {"content-type", "connect-protocol-version", "x-grpc-web", "authorization"}
    assert answer["access-control-max-age"] == "7200"


def test_an_unlisted_origin_or_header_is_refused(allowing: ServerThread) -> None:
    status, answer = preflight(allowing, "http://evil.example.com", "content-type")
    assert status == 400
    assert "access-control-allow-origin" not in answer
    status, _ = preflight(allowing, APP, "content-type,x-something-else")
    assert status == 400


def test_the_call_names_the_origin_and_exposes_the_grpc_status(allowing: ServerThread) -> None:
    status, answer, body = request(allowing, "POST", ENQUEUE, {**CONNECT_JSON, "Origin": APP}, BODY)
    assert status == 200
    assert json.loads(body)["job"]["type"] == "email"
    assert answer["access-control-allow-origin"] == APP
    exposed = {h.strip().lower() for h in answer["access-control-expose-headers"].split(",")}
    assert exposed == {"grpc-status", "grpc-message", "grpc-status-details-bin"}
    # Another origin's call is answered (a browser preflights it first and stops),
    # but nothing in the answer lets a browser read it.
    status, answer, _ = request(
        allowing, "POST", ENQUEUE, {**CONNECT_JSON, "Origin": "http://evil.example.com"}, BODY
    )
    assert status == 200
    assert "access-control-allow-origin" not in answer


def test_a_call_without_origin_is_untouched(allowing: ServerThread) -> None:
    """A gRPC client's or a worker's POST skips the middleware (which would add Vary)."""
    status, answer, _ = request(allowing, "POST", ENQUEUE, CONNECT_JSON, BODY)
    assert status == 200
    assert not [name for name in answer if name.startswith("access-control-")]
    assert "Origin" not in answer.get("vary", "")


def test_a_get_says_its_answer_varies_with_the_origin(allowing: ServerThread) -> None:
    """A GET may be cached: without Origin too, its answer says it depends on one."""
    status, answer, _ = request(allowing, "GET", "/healthz", {})
    assert status == 200
    assert "Origin" in answer["vary"]
    _, answer, _ = request(allowing, "GET", "/healthz", {"Origin": APP})
    assert answer["access-control-allow-origin"] == APP


def test_the_dashboard_stays_same_origin(allowing: ServerThread) -> None:
    status, answer, _ = request(allowing, "GET", "/dashboard/", {"Origin": APP})
    assert status == 200
    assert "access-control-allow-origin" not in answer


def test_by_default_no_origin_is_allowed(default: ServerThread) -> None:
    status, answer = preflight(default, APP, "content-type,connect-protocol-version")
    assert status == 405  # connectrpc: OPTIONS is no RPC
    assert "access-control-allow-origin" not in answer
    _, answer, _ = request(default, "POST", ENQUEUE, {**CONNECT_JSON, "Origin": APP}, BODY)
    assert "access-control-allow-origin" not in answer


def test_origins_are_parsed_and_checked() -> None:
    assert parse_origins(" https://app.example.com ,http://localhost:3000,") == (
        "https://app.example.com",
        "http://localhost:3000",
    )
    assert parse_origins("") == ()
    # As a browser writes them: lower case, no default port.
    assert parse_origins("HTTPS://App.Example.com:443,http://x.test:80,http://x.test:8080") == (
        "https://app.example.com",
        "http://x.test",
        "http://x.test:8080",
    )
    assert parse_origins("*") == ("*",)
    for bad in (
        "https://app.example.com/",
        "app.example.com",
        "ftp://x",
        "https://a/b",
        "https://user@app.example.com",
        "https://app.example.com:port",
    ):
        with pytest.raises(ValueError, match="is not an origin"):
            parse_origins(bad)
    with pytest.raises(ValueError, match="alone"):
        parse_origins("*, https://app.example.com")


def test_a_bad_origin_stops_the_server_with_one_clear_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ValidationError, match="is not an origin"):
        ServerSettings(cors_origins="https://app.example.com/")
    monkeypatch.setenv("JOBQUEUE_CORS_ORIGINS", "http://localhost:3000")
    assert ServerSettings().cors_origin_list == ("http://localhost:3000",)
    result = CliRunner().invoke(cli, ["--cors-origins", "app.example.com"])
    assert result.exit_code == 2
    assert "'app.example.com' is not an origin" in result.output

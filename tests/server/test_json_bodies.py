"""A Connect JSON request must be a JSON object: anything else is refused in plain words.

The real server App over HTTP/1.1, as curl or a browser would call it. Unknown
fields are ignored (connect-go's rule, documented in the README); a body that
is no object at all gets invalid_argument naming what it was, and stores
nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.dashboard._browser import ServerThread

from .test_cors import CONNECT_JSON, ENQUEUE, request


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    thread = ServerThread({})
    thread.start()
    yield thread
    thread.stop()


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b"null", "null"),
        (b"5", "a number"),
        (b"-1", "a number"),
        (b"[]", "an array"),
        (b'[{"type": "x"}]', "an array"),
        (b'"s"', "a string"),
        (b"true", "true"),
        (b"   ", "an empty body"),
        (b"<xml/>", "something that is not JSON"),
        (b'\xef\xbb\xbf{"type": "x"}', "a byte-order mark (send UTF-8 without one)"),
    ],
)
def test_a_body_that_is_no_json_object_is_refused_plainly(
    server: ServerThread, body: bytes, kind: str
) -> None:
    before = len(server.call(server.service.list_jobs()).jobs)
    status, _, answer = request(server, "POST", ENQUEUE, CONNECT_JSON, body)
    assert status == 400
    error = json.loads(answer)
    assert error["code"] == "invalid_argument"
    assert error["message"] == (
        f"unmarshal message: the body must be a JSON object ({{...}}), got {kind}"
    )
    assert len(server.call(server.service.list_jobs()).jobs) == before


def test_an_object_is_read_and_unknown_fields_are_ignored(server: ServerThread) -> None:
    # Any amount of whitespace may come first (RFC 8259), more than a first glance's worth.
    body = b"\n" + b" " * 200 + b'{"type": "email", "payload": "e30=", "excution_time_ms": "5"}'
    status, _, answer = request(server, "POST", ENQUEUE, CONNECT_JSON, body)
    assert status == 200
    assert json.loads(answer)["job"]["type"] == "email"

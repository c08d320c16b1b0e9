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


BULK = "/mpataki.jobqueue.v1.AdminService/BulkJobs"
LIST = "/mpataki.jobqueue.v1.JobService/ListJobs"


def refused(server: ServerThread, path: str, body: object) -> str:
    """The message of an invalid_argument answer; fails on any other answer."""
    status, _, answer = request(server, "POST", path, CONNECT_JSON, json.dumps(body).encode())
    error = json.loads(answer)
    assert (status, error["code"]) == (400, "invalid_argument"), (status, error)
    message: str = error["message"]
    return message


@pytest.mark.parametrize(
    "payload",
    ['{"to":"ada@example.com"}', "abc$", "!!!", "e30=x", "a", "e3=0", "e30 ="],
)
def test_a_payload_that_is_not_base64_is_refused(server: ServerThread, payload: str) -> None:
    # The protobuf parser dropped characters it did not know and stored other bytes.
    before = len(server.call(server.service.list_jobs()).jobs)
    message = refused(server, ENQUEUE, {"type": "email", "payload": payload})
    assert message.startswith("unmarshal message: payload: not base64"), message
    assert len(server.call(server.service.list_jobs()).jobs) == before


def test_a_payload_that_is_not_text_is_refused_plainly(server: ServerThread) -> None:
    message = refused(server, ENQUEUE, {"type": "email", "payload": {"to": "a"}})
    assert message == (
        "unmarshal message: payload: must be base64 text (protobuf JSON carries bytes so)"
    )


@pytest.mark.parametrize(
    ("payload", "stored"),
    [
        ("e30=", b"{}"),
        ("e30", b"{}"),
        ("-_8=", b"\xfb\xff"),
        ("+/8=", b"\xfb\xff"),
        ("", b""),
        ("YWJj\nZGVm", b"abcdef"),  # wrapped lines, as base64 tools write them
        ("YWJjZGVm\r\n", b"abcdef"),
        ("YWJj\nZA", b"abcd"),  # unpadded, a break inside: the parser counted it
    ],
)
def test_base64_standard_or_url_safe_padded_or_not_is_read(
    server: ServerThread, payload: str, stored: bytes
) -> None:
    status, _, answer = request(
        server,
        "POST",
        ENQUEUE,
        CONNECT_JSON,
        json.dumps({"type": "b64", "payload": payload}).encode(),
    )
    assert status == 200, answer
    job_id = json.loads(answer)["job"]["id"]
    assert server.call(server.service.get(job_id)).payload == stored


def test_an_unknown_enum_name_is_refused_and_changes_nothing(server: ServerThread) -> None:
    # Dropped, the misspelt status would have widened the cancel to every job of the type.
    status, _, _ = request(
        server, "POST", ENQUEUE, CONNECT_JSON, json.dumps({"type": "keep", "payload": ""}).encode()
    )
    assert status == 200
    message = refused(
        server,
        BULK,
        {"action": "BULK_ACTION_CANCEL", "filter": {"type": "keep", "status": "JOB_STATUS_FAILD"}},
    )
    assert (
        message == "unmarshal message: filter.status: 'JOB_STATUS_FAILD' is not a known JobStatus"
    )
    kept = server.call(server.service.list_jobs(job_type="keep")).jobs
    assert [job.status.name for job in kept] == ["PENDING"]

    message = refused(server, LIST, {"status": "NOPE"})
    assert message == "unmarshal message: status: 'NOPE' is not a known JobStatus"
    message = refused(
        server,
        ENQUEUE,
        {"type": "u", "uniqueKey": "k", "onConflict": "UNIQUE_CONFLICT_POLICY_REJECTT"},
    )
    assert "onConflict: 'UNIQUE_CONFLICT_POLICY_REJECTT' is not a known" in message
    # False read as 0 (UNSPECIFIED, "any status") widened the cancel the same way.
    for value in (False, True, 1.7):
        message = refused(
            server,
            BULK,
            {"action": "BULK_ACTION_CANCEL", "filter": {"type": "keep", "status": value}},
        )
        assert (
            message == f"unmarshal message: filter.status: {json.dumps(value)} is not a JobStatus"
        )
    assert [
        job.status.name for job in server.call(server.service.list_jobs(job_type="keep")).jobs
    ] == ["PENDING"]
    # A known name, in either spelling of the field, is read as before.
    status, _, answer = request(
        server, "POST", LIST, CONNECT_JSON, json.dumps({"status": "JOB_STATUS_PENDING"}).encode()
    )
    assert status == 200, answer


def test_a_key_given_twice_is_refused_in_one_plain_sentence(server: ServerThread) -> None:
    body = b'{"type": "a", "payload": "", "type": "b"}'
    status, _, answer = request(server, "POST", ENQUEUE, CONNECT_JSON, body)
    assert status == 400
    assert json.loads(answer)["message"] == 'unmarshal message: the key "type" is given twice'

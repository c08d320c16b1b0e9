"""Raw Connect and gRPC-Web calls over HTTP/1.1, for the bad-input fuzzer.

The fuzzer's requests are bytes built by hand; these helpers put them on the
wire as a browser (gRPC-Web) or the Go CLI (Connect) would, and read back the
status the server chose — nothing in between validates or re-encodes them.
Each returns a gRPC status code name, so all protocols share one table of
documented codes.
"""

from __future__ import annotations

import http.client
import json
import struct

_TIMEOUT_MS = 2_000
_STREAM_TIMEOUT_MS = 1_000
"""A stream is judged by its first frame, then read to its end: over HTTP/1.1 the server
notices a client that leaves only at the stream's next message or its deadline (h2corn
reports no disconnect on an idle response), so the call waits for the server to end the
stream — here at this deadline — and every key a watch touched is settled when it returns."""


def _envelope(message: bytes, flags: int = 0) -> bytes:
    return struct.pack(">BI", flags, len(message)) + message


def _read_envelope(response: http.client.HTTPResponse) -> tuple[int, bytes] | None:
    head = response.read(5)
    if len(head) < 5:
        return None
    flags, size = struct.unpack(">BI", head)
    return flags, response.read(size)


def _connect_code(body: bytes) -> str:
    """Connect's error JSON ``{"code": "not_found", ...}`` as a gRPC code name."""
    try:
        code = str(json.loads(body)["code"])
    except (ValueError, KeyError, TypeError):
        return f"UNPARSEABLE:{body[:80]!r}"
    return "CANCELLED" if code == "canceled" else code.upper()


def _grpc_status_name(number: int) -> str:
    import grpc

    for status in grpc.StatusCode:
        if status.value[0] == number:
            return status.name
    return f"UNKNOWN_CODE_{number}"


def connect_call(port: int, path: str, request: bytes, *, streaming: bool) -> str:
    """One Connect call over a fresh HTTP/1.1 connection; a stream is judged by its first frame."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        if streaming:
            headers = {
                "Content-Type": "application/connect+proto",
                "Connect-Protocol-Version": "1",
                "Connect-Timeout-Ms": str(_STREAM_TIMEOUT_MS),
            }
            connection.request("POST", path, body=_envelope(request), headers=headers)
            response = connection.getresponse()
            if response.status != 200:
                return f"HTTP_{response.status}"
            frame = _read_envelope(response)
            if frame is None:
                return "TRUNCATED"
            flags, data = frame
            if not flags & 0x02:
                response.read()  # to the end: the deadline's, or the job's
                return "OK"
            error = json.loads(data).get("error")
            return "OK" if error is None else _connect_code(json.dumps(error).encode())
        headers = {
            "Content-Type": "application/proto",
            "Connect-Protocol-Version": "1",
            "Connect-Timeout-Ms": str(_TIMEOUT_MS),
        }
        connection.request("POST", path, body=request, headers=headers)
        response = connection.getresponse()
        body = response.read()
        return "OK" if response.status == 200 else _connect_code(body)
    finally:
        connection.close()


def grpc_web_call(port: int, path: str, request: bytes, *, streaming: bool) -> str:
    """One gRPC-Web call over a fresh HTTP/1.1 connection: status from headers or trailer frame."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        timeout_ms = _STREAM_TIMEOUT_MS if streaming else _TIMEOUT_MS
        headers = {
            "Content-Type": "application/grpc-web+proto",
            "X-Grpc-Web": "1",
            "Grpc-Timeout": f"{timeout_ms}m",
        }
        connection.request("POST", path, body=_envelope(request), headers=headers)
        response = connection.getresponse()
        if response.status != 200:
            return f"HTTP_{response.status}"
        status = response.getheader("grpc-status")
        if status is not None:  # trailers-only: the status came with the headers
            return _grpc_status_name(int(status))
        while (frame := _read_envelope(response)) is not None:
            flags, data = frame
            if not flags & 0x80:
                if streaming:
                    response.read()  # to the end: the deadline's, or the job's
                    return "OK"
                continue
            trailers = dict(
                line.split(":", 1) for line in data.decode("latin-1").split("\r\n") if ":" in line
            )
            lowered = {key.strip().lower(): value.strip() for key, value in trailers.items()}
            return _grpc_status_name(int(lowered.get("grpc-status", "2")))
        return "TRUNCATED"
    finally:
        connection.close()

"""The message codecs of the Connect, gRPC and gRPC-Web endpoints.

connectrpc's own: protobuf binary, and protobuf JSON ignoring unknown fields
as connect-go does (a Go client sending a newer field still works). The JSON
codec also refuses, in plain words, a body that is no JSON object: the
protobuf parser took ``[]`` for an empty request and answered ``null`` or
``5`` with Python's own TypeError text.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

from connectrpc.code import Code
from connectrpc.codec import Codec
from connectrpc.compat import google_protobuf_binary_codec, google_protobuf_json_codec
from connectrpc.errors import ConnectError
from google.protobuf.message import Message

M = TypeVar("M", bound=Message)

_FIRST = re.compile(rb"[^ \t\r\n]")
"""The first byte that is not JSON whitespace (RFC 8259 allows any amount before a value)."""


class ObjectJSONCodec:
    """connectrpc's protobuf JSON codec, whose request must be a JSON object (as protojson's)."""

    def __init__(self) -> None:
        self._json: Codec[Message, Any] = google_protobuf_json_codec()

    def name(self) -> str:
        return self._json.name()

    def encode(self, message: Message) -> bytes:
        return self._json.encode(message)

    def decode(self, data: bytes | bytearray, message_class: type[M]) -> M:
        first = _FIRST.search(data)
        start = first.group() if first is not None else b""
        if start != b"{":
            kind = "an empty body" if not start else _KINDS.get(start, "something that is not JSON")
            raise ConnectError(
                Code.INVALID_ARGUMENT,
                f"unmarshal message: the body must be a JSON object ({{...}}), got {kind}",
            )
        decoded: M = self._json.decode(data, message_class)
        return decoded


_KINDS = {
    b"[": "an array",
    b'"': "a string",
    b"n": "null",
    b"t": "true",
    b"f": "false",
    b"\xef": "a byte-order mark (send UTF-8 without one)",
    **{bytes([digit]): "a number" for digit in b"-0123456789"},
}


def wire_codecs() -> list[Codec[Any, Any]]:
    """The codecs every endpoint speaks: binary protobuf, and JSON objects."""
    return [google_protobuf_binary_codec(), ObjectJSONCodec()]

"""The message codecs of the Connect, gRPC and gRPC-Web endpoints.

connectrpc's own: protobuf binary, and protobuf JSON ignoring unknown fields
as connect-go does (a Go client sending a newer field still works). The JSON
codec also refuses, in plain words, a body that is no JSON object: the
protobuf parser took ``[]`` for an empty request and answered ``null`` or
``5`` with Python's own TypeError text.

It refuses two more things the protobuf parser lets through, both a caller's
mistake that would otherwise change data (see ``_fields_checked``): bytes that
are not base64 (the parser drops the characters it does not know, so a JSON
text sent as a payload was stored as other bytes) and an enum name the API
does not have (the parser drops the field, so a misspelt status widened a
bulk cancel to every job of the type).
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any, TypeVar, cast

from connectrpc.code import Code
from connectrpc.codec import Codec
from connectrpc.compat import google_protobuf_binary_codec, google_protobuf_json_codec
from connectrpc.errors import ConnectError
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
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
        try:
            body = json.loads(data, object_pairs_hook=_without_repeats)
        except ValueError:
            # Not JSON: the protobuf parser says what is wrong, in its words.
            decoded: M = self._json.decode(data, message_class)
            return decoded
        _fields_checked(body, cast(Descriptor, message_class.DESCRIPTOR), "")
        # Parsed once: the checked object goes to protobuf's reader as it is.
        message = message_class()
        json_format.ParseDict(body, message, ignore_unknown_fields=True)
        return message


_BASE64 = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")
"""Standard or URL-safe base64, padded or not: what protobuf JSON parsers accept for bytes."""


def _fields_checked(body: dict[str, Any], descriptor: Descriptor, path: str) -> None:
    """Refuse bytes that are not base64 and enum names the API lacks, at any depth.

    Go's protojson refuses bad base64 too; for an unknown enum name connect-go
    (which discards unknown fields) drops the field, as Python's parser does.
    Dropping it turns a filter or a conflict policy into its default, which
    acts on other jobs than the caller meant, so it is refused here as an
    unknown number already is. Anything else is left to the parser.
    """
    fields = _fields_by_json_name(descriptor)
    for key, value in body.items():
        field = fields.get(key)
        if field is None or value is None:
            continue
        where = f"{path}{key}"
        message = field.message_type
        if message is not None and message.GetOptions().map_entry:
            if isinstance(value, dict):
                entry = message.fields_by_name["value"]
                for name, item in value.items():
                    value[name] = _value_checked(item, entry, f"{where}[{json.dumps(name)}]")
            continue
        repeated = field.is_repeated and isinstance(value, list)
        for index, item in enumerate(value if repeated else [value]):
            at = f"{where}[{index}]" if repeated else where
            if message is None:
                # Written back: bytes read without their line breaks (see _value_checked).
                checked = _value_checked(item, field, at)
                if repeated:
                    value[index] = checked
                else:
                    body[key] = checked
            elif isinstance(item, dict) and not message.full_name.startswith("google.protobuf."):
                _fields_checked(item, message, f"{at}.")


def _value_checked(value: Any, field: FieldDescriptor, where: str) -> Any:
    """The value, bytes without their line breaks; InvalidArgument for a refused one."""
    if field.type == FieldDescriptor.TYPE_BYTES:
        if not isinstance(value, str):
            raise _invalid(f"{where}: must be base64 text (protobuf JSON carries bytes so)")
        # Line breaks are skipped, as Go's decoder does (base64 tools wrap at 76).
        value = value.replace("\r", "").replace("\n", "")
        digits = value.rstrip("=")
        if (
            not _BASE64.fullmatch(value)
            or len(digits) % 4 == 1
            or (digits != value and len(value) % 4)
        ):
            raise _invalid(
                f"{where}: not base64 (protobuf JSON carries bytes as base64 text;"
                ' encode the bytes, e.g. {"a": 1} as eyJhIjogMX0=)'
            )
        return value
    if field.enum_type is not None:
        if isinstance(value, str) and value not in field.enum_type.values_by_name:
            raise _invalid(f"{where}: {value!r} is not a known {field.enum_type.name}")
        # The parser reads false as 0 (UNSPECIFIED: "any" in a filter) and 1.7 as 1.
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise _invalid(f"{where}: {json.dumps(value)} is not a {field.enum_type.name}")
    return value


def _without_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object as a dict; a key given twice is refused, as protobuf JSON does."""
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _invalid(f"the key {json.dumps(key)} is given twice")
        found[key] = value
    return found


def _invalid(message: str) -> ConnectError:
    return ConnectError(Code.INVALID_ARGUMENT, f"unmarshal message: {message}")


@cache
def _fields_by_json_name(descriptor: Descriptor) -> dict[str, FieldDescriptor]:
    """A message's fields under both names protobuf JSON accepts: lowerCamel and the proto's."""
    fields: dict[str, FieldDescriptor] = {}
    for field in descriptor.fields:
        fields[field.json_name] = field
        fields[field.name] = field
    return fields


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

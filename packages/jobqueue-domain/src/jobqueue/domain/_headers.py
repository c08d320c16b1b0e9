"""Job headers: a small string map carried with a job, for context such as trace ids.

Producers set them at enqueue; every store keeps them with the job and every
reader gets them back unchanged, so a worker can continue what the producer
started (the W3C ``traceparent`` of OpenTelemetry, a tenant, a request id).
They are bounded like the rest of a job: a header map is not a second payload.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ._errors import InvalidJob

MAX_HEADERS = 32
"""The most headers one job carries."""

MAX_HEADER_KEY_LENGTH = 128
MAX_HEADER_VALUE_BYTES = 1_024
"""A value's size in UTF-8."""

_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def validate_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """Check a header map; returns a copy the caller cannot change afterwards.

    Keys are 1 to 128 characters of letters, digits, ``.``, ``_`` and ``-``
    (starting with a letter or digit), so they need no escaping in any store
    or wire; values are strings of at most 1,024 UTF-8 bytes.
    """
    if not headers:
        return {}
    if len(headers) > MAX_HEADERS:
        raise InvalidJob("headers", f"at most {MAX_HEADERS} headers")
    checked: dict[str, str] = {}
    for key, value in headers.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidJob("headers", "keys and values must be strings")
        if len(key) > MAX_HEADER_KEY_LENGTH or not _KEY.fullmatch(key):
            raise InvalidJob(
                "headers",
                f"key {key[:40]!r}: 1 to {MAX_HEADER_KEY_LENGTH} letters, digits, '.', '_' or "
                "'-', starting with a letter or digit",
            )
        if len(value.encode()) > MAX_HEADER_VALUE_BYTES:
            raise InvalidJob(
                "headers", f"the value of {key!r} is over {MAX_HEADER_VALUE_BYTES} bytes"
            )
        checked[key] = value
    return checked

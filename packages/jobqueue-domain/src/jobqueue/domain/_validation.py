"""Rules every new job must pass before it reaches a store."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ._errors import InvalidJob

MAX_TYPE_LENGTH = 128
MAX_EPOCH_MS = 253_402_300_799_999
"""The last millisecond of the year 9999: later times are a caller's bug, not a plan."""
MAX_IDEMPOTENCY_KEY_LENGTH = 256
MAX_ERROR_LENGTH = 8_192

_TYPE_RE = re.compile(r"[A-Za-z0-9_.:-]+")
_CANONICAL_ID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Size limits a deployment may tune.

    ``max_result_bytes`` bounds what a handler may store as its result, on the
    direct path and through the server alike.
    """

    max_payload_bytes: int = 1024 * 1024
    max_result_bytes: int = 1024 * 1024
    max_batch_size: int = 10_000
    max_attempts_ceiling: int = 1_000
    max_page_size: int = 1_000


def validate_type(job_type: str) -> str:
    """Check a job type: 1 to 128 characters from ``[A-Za-z0-9_.:-]``.

    The alphabet keeps a type safe to embed in a storage key, so no type can
    address a key outside its store's namespace.
    """
    if not job_type:
        raise InvalidJob("type", "must not be empty")
    if len(job_type) > MAX_TYPE_LENGTH:
        raise InvalidJob("type", f"must be at most {MAX_TYPE_LENGTH} characters")
    if not _TYPE_RE.fullmatch(job_type):
        raise InvalidJob("type", "may contain only letters, digits and _ . : -")
    return job_type


def validate_payload(payload: bytes, limits: Limits) -> bytes:
    if len(payload) > limits.max_payload_bytes:
        raise InvalidJob(
            "payload",
            f"is {len(payload)} bytes, more than the limit of {limits.max_payload_bytes}",
        )
    return payload


def result_too_large(result: bytes | None, limits: Limits) -> str | None:
    """The error of a result over the limit, or None when it fits."""
    if result is None or len(result) <= limits.max_result_bytes:
        return None
    return f"result too large: {len(result)} bytes > limit of {limits.max_result_bytes}"


def validate_execution_time(execution_time_ms: int) -> int:
    """Check an absolute time in ms since the epoch; past times simply mean "now"."""
    if execution_time_ms < 0:
        raise InvalidJob("execution_time_ms", "must not be negative")
    if execution_time_ms > MAX_EPOCH_MS:
        raise InvalidJob("execution_time_ms", "is after the year 9999")
    return execution_time_ms


def validate_max_attempts(max_attempts: int | None, limits: Limits) -> int | None:
    if max_attempts is None:
        return None
    if not 1 <= max_attempts <= limits.max_attempts_ceiling:
        raise InvalidJob("max_attempts", f"must be between 1 and {limits.max_attempts_ceiling}")
    return max_attempts


MIN_PRIORITY = -100
MAX_PRIORITY = 100
"""A job's priority: among due jobs of one type a higher one is claimed first (default 0)."""


def validate_priority(priority: int) -> int:
    """Check a priority: an integer from -100 to 100 (a bool is a caller's bug, not a 1)."""
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise InvalidJob("priority", "must be an integer")
    if not MIN_PRIORITY <= priority <= MAX_PRIORITY:
        raise InvalidJob("priority", f"must be between {MIN_PRIORITY} and {MAX_PRIORITY}")
    return priority


def validate_idempotency_key(key: str | None) -> str | None:
    if key is None:
        return None
    if not key or len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
        raise InvalidJob("idempotency_key", f"must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters")
    if has_control_characters(key):
        raise InvalidJob("idempotency_key", "must not contain control characters")
    return key


MAX_LIMIT_KEY_LENGTH = 128
"""A limit key names a tenant (a customer id...): short, printable, no spaces."""


def validate_limit_key(key: str | None, *, priority: int = 0) -> str | None:
    """Check a job's limit key: 1 to 128 printable characters, no whitespace.

    Stores embed the key in a storage key name and split on whitespace, so
    none is allowed. A keyed job runs in its key's turn, first come first
    served within the key: a priority beside a key would be silently ignored,
    so the pair is refused instead.
    """
    if key is None:
        return None
    if not isinstance(key, str) or not key or len(key) > MAX_LIMIT_KEY_LENGTH:
        raise InvalidJob("limit_key", f"must be 1 to {MAX_LIMIT_KEY_LENGTH} characters")
    if not key.isprintable() or any(char.isspace() for char in key):
        raise InvalidJob("limit_key", "must be printable, with no whitespace")
    if priority:
        raise InvalidJob("limit_key", "cannot be combined with a priority")
    return key


def has_control_characters(text: str) -> bool:
    """Whether ``text`` holds a Unicode control character (category Cc: C0, DEL, C1).

    Keys are shown in listings, logs and the dashboard: a NUL or an ESC there
    is an escape sequence for whoever reads them, never part of a name.
    """
    # Cc is exactly U+0000-U+001F and U+007F-U+009F (the Unicode standard fixes
    # it): one regex search instead of a category lookup per character, which
    # cost every enqueue with a key (the SDK sends one with each) ~8 µs.
    return _CONTROL_RE.search(text) is not None


def validate_job_id(job_id: str) -> str:
    """Check that an id is a UUID in its canonical text form; returns it lower-cased."""
    # Every settled outcome passes here (a worker's, a server's): an id already
    # canonical, as stores hand them out, is matched without building a UUID.
    if _CANONICAL_ID_RE.fullmatch(job_id):
        return job_id
    if len(job_id) != 36:
        raise InvalidJob("id", "must be a UUID such as 0190c3a2-7d5e-7b1c-9a4f-3e2d1c0b9a87")
    import uuid  # (only here, off the canonical path: it loads platform and sysconfig)

    try:
        parsed = uuid.UUID(job_id)
    except ValueError:
        raise InvalidJob("id", "is not a valid UUID") from None
    canonical = str(parsed)
    if canonical != job_id.lower():
        raise InvalidJob("id", "is not a valid UUID")
    return canonical


def truncate_error(error: str) -> str:
    """Keep stored errors bounded: a traceback can be arbitrarily long."""
    if len(error) <= MAX_ERROR_LENGTH:
        return error
    return error[: MAX_ERROR_LENGTH - 3] + "..."

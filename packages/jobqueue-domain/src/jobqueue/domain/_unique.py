"""Unique jobs: at most one live job per unique key, and what a second enqueue gets.

A unique key is a business rule ("one sync per customer at a time"), unlike an
idempotency key, which only makes one retried request safe. The lock a key
takes belongs to its holder job and is released by the very step that moves
the holder out of the rule's scope (claim, finish), never by a timer the job
could outlive; so no crash can leave a key locked with no job behind it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ._errors import InvalidJob, JobQueueError
from ._validation import has_control_characters

MAX_UNIQUE_KEY_LENGTH = 256
MAX_UNIQUE_WINDOW_MS = 7 * 24 * 3600 * 1000
"""A debounce window is at most a week: longer is a schedule, not a debounce."""


class UniqueScope(enum.IntEnum):
    """How long a holder keeps its key. Values are the wire numbers."""

    PENDING = 1
    """Until the holder is claimed (or cancelled): one job waiting, any number running."""
    ACTIVE = 2
    """Until the holder finishes: one job pending or running at a time."""
    DEBOUNCE = 3
    """For ``window_ms`` after the holder was enqueued, and only while it is still pending."""


class OnConflict(enum.IntEnum):
    """What an enqueue gets when its key is held. Values are the wire numbers."""

    RETURN_EXISTING = 1
    """Store nothing; return the holder (the default, like an idempotency key)."""
    REJECT = 2
    """Store nothing; raise ``UniqueConflict`` (ALREADY_EXISTS on the wire)."""
    REPLACE = 3
    """Cancel a PENDING holder and store the new job as the holder; a RUNNING holder rejects."""


@dataclass(frozen=True, slots=True, kw_only=True)
class UniqueRule:
    """A job's unique key, its scope and the conflict policy it was enqueued with.

    ``window_ms`` is used by ``DEBOUNCE`` only (and required there).
    """

    key: str
    scope: UniqueScope = UniqueScope.ACTIVE
    on_conflict: OnConflict = OnConflict.RETURN_EXISTING
    window_ms: int = 0


class UniqueConflict(JobQueueError):
    """Raised when an enqueue's unique key is held and its policy rejects (or a RUNNING
    holder cannot be replaced). ``holder_id`` is the job that holds ``key``."""

    def __init__(self, key: str, holder_id: str) -> None:
        super().__init__(f"unique key {key!r} is held by job {holder_id}")
        self.key = key
        self.holder_id = holder_id


def validate_unique(
    key: str | None,
    scope: UniqueScope | int | None,
    on_conflict: OnConflict | int | None,
    window_ms: int | None,
) -> UniqueRule | None:
    """The rule a request asks for, or None; an option without a key is refused."""
    if key is None or key == "":
        if scope or on_conflict or window_ms:
            raise InvalidJob("unique_key", "unique options need a unique key")
        return None
    if len(key) > MAX_UNIQUE_KEY_LENGTH:
        raise InvalidJob("unique_key", f"must be at most {MAX_UNIQUE_KEY_LENGTH} characters")
    if has_control_characters(key):
        raise InvalidJob("unique_key", "must not contain control characters")
    try:
        scope = UniqueScope(scope or UniqueScope.ACTIVE)
    except ValueError:
        raise InvalidJob("unique_scope", f"unknown scope {scope}") from None
    try:
        on_conflict = OnConflict(on_conflict or OnConflict.RETURN_EXISTING)
    except ValueError:
        raise InvalidJob("on_conflict", f"unknown conflict policy {on_conflict}") from None
    window_ms = window_ms or 0
    if scope is UniqueScope.DEBOUNCE:
        if not 1 <= window_ms <= MAX_UNIQUE_WINDOW_MS:
            raise InvalidJob(
                "unique_window_ms", f"a debounce needs a window of 1..{MAX_UNIQUE_WINDOW_MS} ms"
            )
    elif window_ms:
        raise InvalidJob("unique_window_ms", "a window applies to the DEBOUNCE scope only")
    return UniqueRule(key=key, scope=scope, on_conflict=on_conflict, window_ms=window_ms)

"""The SDK's own idempotency keys: random version-4 UUIDs in canonical text, one per call."""

from __future__ import annotations

import uuid

from jobqueue.client._convert import enqueue_request, new_idempotency_key
from jobqueue.client._models import JobSpec


def test_keys_are_canonical_random_uuids_and_never_repeat() -> None:
    keys = [new_idempotency_key() for _ in range(2_000)]
    assert len(set(keys)) == len(keys)
    for key in keys:
        parsed = uuid.UUID(key)
        assert str(parsed) == key  # canonical: lower-case, hyphens in place
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


def test_an_enqueue_without_a_key_gets_a_fresh_one_and_a_given_key_is_kept() -> None:
    first = enqueue_request(JobSpec("t")).idempotency_key
    second = enqueue_request(JobSpec("t")).idempotency_key
    assert first != second
    assert uuid.UUID(first).version == 4
    assert enqueue_request(JobSpec("t", idempotency_key="mine")).idempotency_key == "mine"

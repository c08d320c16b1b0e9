"""UuidV7Generator's text is an RFC 9562 UUIDv7 bit for bit (its text is built in pieces).

The time's part of an id is formatted once per millisecond and the rest as
one hex string (_clock.py): these check every field against ``uuid.UUID``'s
reading of the text, and the counter's roll-over into the next millisecond.
"""

from __future__ import annotations

import itertools
import time
import uuid

from jobqueue.domain import UuidV7Generator


def _fields(text: str) -> tuple[int, int, int]:
    """(ms, counter, random bits) of a UUIDv7, read by the standard library."""
    value = uuid.UUID(text)
    assert str(value) == text
    assert (value.version, value.variant) == (7, uuid.RFC_4122)
    return value.int >> 80, (value.int >> 64) & 0xFFF, value.int & (1 << 62) - 1


def test_every_field_is_where_rfc_9562_puts_it() -> None:
    ids = UuidV7Generator()
    before = time.time_ns() // 1_000_000
    values = [ids.new_id() for _ in range(2_000)]
    after = time.time_ns() // 1_000_000
    fields = [_fields(value) for value in values]
    assert all(before <= ms <= after for ms, _, _ in fields)
    # Within a millisecond the counter counts up by one from a start below 0x400.
    for (ms, counter, _), (next_ms, next_counter, _) in itertools.pairwise(fields):
        if next_ms == ms:
            assert next_counter == counter + 1
        else:
            assert next_ms > ms
            assert next_counter < 0x400
    assert len({tail for _, _, tail in fields}) == len(fields)


def test_a_full_counter_moves_the_id_into_the_next_millisecond() -> None:
    ids = UuidV7Generator()
    first = ids.new_id()
    ms, _, _ = _fields(first)
    ids._counter = 0xFFE  # as if 4,000 ids were made in this millisecond
    ids._last_ms = ms + 10_000  # and the clock has not caught up with them
    ids._prefix = f"{ms + 10_000:012x}"[:8] + "-" + f"{ms + 10_000:012x}"[8:] + "-"
    values = [ids.new_id() for _ in range(3)]
    assert [_fields(value)[:2] for value in values] == [
        (ms + 10_000, 0xFFF),
        (ms + 10_001, 0),
        (ms + 10_001, 1),
    ]
    assert values == sorted(values)
    assert first < values[0]

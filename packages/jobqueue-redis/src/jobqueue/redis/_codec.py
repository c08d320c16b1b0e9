"""Job hashes: short field names keep a pending job's footprint small."""

from __future__ import annotations

import decimal
import json
from collections.abc import Mapping, Sequence

from jobqueue.domain import Job, JobStatus, OnConflict, UniqueRule, UniqueScope
from jobqueue.domain._job import stored_job

# t type, p payload, s status, e execution time, c created, u updated,
# a attempts, m max attempts, err last error, r result, x cancel requested,
# k idempotency key, l lease token, d lease deadline, f finished at, w watchers,
# h headers (a JSON object; absent: none),
# pr priority (absent: 0), lk limit key (absent: none), g 1 while leased under
# a concurrency limit (see claim.lua).


_STATUSES = {str(int(status)).encode(): status for status in JobStatus}
"""The stored status digit to its enum member: a dict lookup, not ``Enum.__call__``
(which showed in the drain worker's profile)."""


def stored_int(raw: bytes) -> int:
    """A whole number a script stored: ``int``, or its exponent form, exactly.

    Redis 7.2.0 to 7.2.4 wrote a Lua number given to ``redis.call`` with
    fpconv_dtoa, which prints multiples of 1e8 in exponent form (redis/redis#13113):
    a timestamp such as 1764600000000 was stored as ``1.7646e+12``. The scripts
    format whole numbers themselves now (``int`` in _common.lua); this reads
    what such a Redis wrote before. ``int`` first: the fallback is for those
    values only, and Decimal keeps every digit (a float would not past 2**53).
    """
    try:
        return int(raw)
    except ValueError:
        try:
            value = decimal.Decimal(raw.decode())
        except (decimal.InvalidOperation, UnicodeDecodeError):
            raise ValueError(f"not a whole number: {raw!r}") from None
        if not value.is_finite() or value != value.to_integral_value():
            raise ValueError(f"not a whole number: {raw!r}") from None
        return int(value)


def pairs_to_dict(flat: Sequence[bytes]) -> dict[bytes, bytes]:
    """HGETALL as a Lua script returns it: a flat field, value list."""
    items = iter(flat)
    return dict(zip(items, items, strict=True))


_SCRIPT_NUMBERS = (b"e", b"c", b"u", b"a")
"""The job hash fields scripts write from Lua numbers: due, created, updated, attempts."""


def _whole_numbers(h: Mapping[bytes, bytes]) -> dict[bytes, bytes] | None:
    """``h`` with its script-written numbers in exponent form rewritten whole, or
    None when none is (the error that led here was not theirs)."""
    fixed: dict[bytes, bytes] | None = None
    for field in _SCRIPT_NUMBERS:
        raw = h.get(field)
        if raw is None:
            continue
        try:
            int(raw)
        except ValueError:
            if fixed is None:
                fixed = dict(h)
            fixed[field] = b"%d" % stored_int(raw)
    return fixed


def job_from_hash(job_id: str, h: Mapping[bytes, bytes]) -> Job:
    max_attempts = h.get(b"m")
    last_error = h.get(b"err")
    key = h.get(b"k")
    try:
        # Positional, in stored_job's order: every claimed job is read here.
        return stored_job(
            job_id,
            h[b"t"].decode(),
            h.get(b"p", b""),
            _STATUSES[h[b"s"]],
            int(h[b"e"]),
            int(h[b"c"]),
            int(h.get(b"u") or h[b"c"]),
            int(h.get(b"a", b"0")),
            int(max_attempts) if max_attempts is not None else None,
            last_error.decode(errors="replace") if last_error is not None else None,
            h.get(b"r"),
            h.get(b"x") == b"1",
            key.decode() if key is not None else None,
            int(h.get(b"pr", b"0")),
            h[b"lk"].decode() if b"lk" in h else None,
            _unique_rule(h),
            float(h[b"pg"]) if b"pg" in h else None,
            h[b"pm"].decode(errors="replace") if b"pg" in h else None,
            json.loads(h[b"h"]) if b"h" in h else {},
        )
    except ValueError:
        # A hash written by Redis 7.2.0-7.2.4 (see stored_int): read it once
        # more with those numbers whole. The common path pays nothing for this.
        fixed = _whole_numbers(h)
        if fixed is None:
            raise
        return job_from_hash(job_id, fixed)


def _unique_rule(h: Mapping[bytes, bytes]) -> UniqueRule | None:
    """The rule add.lua stored: 'uk' the key, 'uq' "scope on_conflict window_ms"."""
    key = h.get(b"uk")
    if key is None:
        return None
    scope, on_conflict, window_ms = h[b"uq"].split()
    return UniqueRule(
        key=key.decode(),
        scope=UniqueScope(int(scope)),
        on_conflict=OnConflict(int(on_conflict)),
        window_ms=int(window_ms),
    )

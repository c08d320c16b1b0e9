"""AdminService's TypeLimits message to the domain's TypeLimits and back.

The domain checks the values (``validate_limits``: INVALID_ARGUMENT, nothing
stored); this keeps unset apart from zero, and reads a zero window as the
default second.
"""

from __future__ import annotations

from jobqueue.domain import TypeLimits
from mpataki.jobqueue.v1 import admin_pb2 as pb

DEFAULT_RATE_INTERVAL_MS = 1_000


def limits_from_proto(message: pb.TypeLimits) -> TypeLimits:
    return TypeLimits(
        concurrency=message.concurrency if message.HasField("concurrency") else None,
        rate=message.rate if message.HasField("rate") else None,
        rate_interval_ms=message.rate_interval_ms or DEFAULT_RATE_INTERVAL_MS,
        key_concurrency=message.key_concurrency if message.HasField("key_concurrency") else None,
        key_rate=message.key_rate if message.HasField("key_rate") else None,
        key_rate_interval_ms=message.key_rate_interval_ms or DEFAULT_RATE_INTERVAL_MS,
    )


def limits_to_proto(limits: TypeLimits) -> pb.TypeLimits:
    message = pb.TypeLimits(rate_interval_ms=limits.rate_interval_ms)
    if limits.concurrency is not None:
        message.concurrency = limits.concurrency
    if limits.rate is not None:
        message.rate = limits.rate
    if limits.key_concurrency is not None:
        message.key_concurrency = limits.key_concurrency
    if limits.key_rate is not None:
        # Its window only beside it: limits set by an older client read back as they were.
        message.key_rate = limits.key_rate
        message.key_rate_interval_ms = limits.key_rate_interval_ms
    return message

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
    )


def limits_to_proto(limits: TypeLimits) -> pb.TypeLimits:
    message = pb.TypeLimits(rate_interval_ms=limits.rate_interval_ms)
    if limits.concurrency is not None:
        message.concurrency = limits.concurrency
    if limits.rate is not None:
        message.rate = limits.rate
    return message

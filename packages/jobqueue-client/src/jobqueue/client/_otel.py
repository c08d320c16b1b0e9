"""Has the process configured an OpenTelemetry tracer provider? One probe for both SDKs.

Also the messaging attributes both sides' spans carry, so that the producer's
``send`` and the worker's ``process`` and ``settle`` name the same system.

The client's producer spans (``_tracing``) and the worker SDK's consumer spans
(``jobqueue.worker._tracing``, which depends on this package) ask it for every
enqueue and every run, so the answer must be cheap while there is none: until a
provider is set, ``get_tracer_provider()`` would read ``os.environ`` (a
``KeyError`` inside) and ``get_tracer`` build a proxy tracer and a
non-recording span per call, only to send no header.

OpenTelemetry is not imported here: a process that set a provider has imported
it already (or names one in ``OTEL_PYTHON_TRACER_PROVIDER``), and a worker that
traces nothing should not carry its modules (resident memory).
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

SYSTEM = "jobqueue"
"""``messaging.system`` of every span: the client's and the worker's."""

# A provider named by the environment is loaded by the first get_tracer_provider().
_FROM_ENV = "OTEL_PYTHON_TRACER_PROVIDER" in os.environ
# The global provider, once one is set: OpenTelemetry allows setting it once only.
_provider: TracerProvider | None = None


def configured_provider() -> TracerProvider | None:
    """The tracer provider the process configured, or None (no spans then)."""
    global _provider
    if _provider is not None:
        return _provider
    trace: Any = sys.modules.get("opentelemetry.trace")
    if trace is None:
        if not _FROM_ENV:
            return None  # never imported: nobody can have set a provider
        try:
            from opentelemetry import trace
        except ImportError:  # the otel extra is not installed
            return None
    elif not _FROM_ENV and getattr(trace, "_TRACER_PROVIDER", False) is None:
        # None set yet. (An API without this global takes the public path below.)
        return None
    from opentelemetry.trace import ProxyTracerProvider

    provider: TracerProvider = trace.get_tracer_provider()
    if isinstance(provider, ProxyTracerProvider):
        return None
    _provider = provider
    return provider


def messaging_attributes(operation: str, destination: str | None = None) -> dict[str, str]:
    """A span's messaging attributes (semantic conventions): system, operation, queue."""
    attributes = {
        "messaging.system": SYSTEM,
        "messaging.operation.type": operation,
        "messaging.operation.name": operation,
    }
    if destination is not None:
        attributes["messaging.destination.name"] = destination
    return attributes

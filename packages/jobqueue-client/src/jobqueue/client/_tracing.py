"""Producer spans (OpenTelemetry), made only when ``opentelemetry-api`` is installed.

``send <type>`` is the producer span of the messaging semantic conventions:
the client starts it when it builds an enqueue and injects its context (W3C
``traceparent``) into the job's headers, so the worker's ``process <type>``
span continues the same trace. Without the API installed (the ``otel``
extra), or with no tracer provider configured, this costs nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

try:
    from opentelemetry import propagate, trace
    from opentelemetry.trace import ProxyTracerProvider, SpanKind, Status, StatusCode
except ImportError:  # the otel extra is not installed
    trace = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer

    from ._errors import JobQueueClientError
    from ._models import Job

SYSTEM = "jobqueue"
R = TypeVar("R")

# A provider named by the environment is loaded by the first get_tracer_provider().
_FROM_ENV = "OTEL_PYTHON_TRACER_PROVIDER" in os.environ
_tracer: Tracer | None = None
"""The configured provider's tracer, once there is one: OpenTelemetry sets it once only."""


def _configured_tracer() -> Tracer | None:
    """The tracer of the provider the process configured; None while there is none.

    Every enqueue asks. Until a provider is set, ``get_tracer`` would read
    ``os.environ`` and build a proxy tracer and a non-recording span per call
    (a few µs of the SDK's cost per enqueue) only to send no header.
    """
    global _tracer
    if _tracer is not None or trace is None:
        return _tracer
    if not _FROM_ENV and getattr(trace, "_TRACER_PROVIDER", False) is None:
        return None  # none set yet (an API without this global takes the path below)
    provider = trace.get_tracer_provider()
    if isinstance(provider, ProxyTracerProvider):
        return None
    _tracer = provider.get_tracer("jobqueue.client")
    return _tracer


class SendSpan:
    """One ``send <type>`` span: its headers to send, ended by the call's answer."""

    def __init__(self, job_type: str, headers: Mapping[str, str] | None) -> None:
        self.headers: dict[str, str] = dict(headers or {})
        self._span: Span | None = None
        tracer = _configured_tracer()
        if tracer is None:
            return
        span = tracer.start_span(
            f"send {job_type}",
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": SYSTEM,
                "messaging.operation.type": "send",
                "messaging.operation.name": "send",
                "messaging.destination.name": job_type,
            },
        )
        if not span.is_recording():
            return
        self._span = span
        propagate.inject(self.headers, context=trace.set_span_in_context(span))

    def reading(self, read: Callable[[Any], Job]) -> Callable[[Any], Job]:
        """``read`` that also ends the span with the stored job's id."""
        if self._span is None:
            return read
        span = self._span

        def read_and_end(response: Any) -> Job:
            job = read(response)
            span.set_attribute("messaging.message.id", job.id)
            span.end()
            return job

        return read_and_end

    def refining(
        self, refine: Callable[[JobQueueClientError], JobQueueClientError] | None
    ) -> Callable[[JobQueueClientError], JobQueueClientError] | None:
        """An error refinement that also ends the span as failed."""
        if self._span is None:
            return refine
        span = self._span

        def refine_and_end(error: JobQueueClientError) -> JobQueueClientError:
            final = refine(error) if refine is not None else error
            span.record_exception(final)
            span.set_status(Status(StatusCode.ERROR, str(final)))
            span.end()
            return final

        return refine_and_end

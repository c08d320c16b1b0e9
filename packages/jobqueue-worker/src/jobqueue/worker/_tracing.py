"""Consumer spans (OpenTelemetry), made only when ``opentelemetry-api`` is installed
and a tracer provider is configured.

``process <type>`` (a consumer span, per the messaging semantic conventions)
covers one run of a handler. Its parent is the context the producer's
``send <type>`` span injected into the job's headers, so the enqueue and every
run of the job share one trace; a run after the first (a retry) also links
to that producer context, as the conventions ask of a message processed
again. The handler runs with the span current, so its own spans nest under
it. ``settle`` marks the verdict handed to the store.

Without the ``otel`` extra, or with no provider set up, no span is made and
a run costs one global read more. OpenTelemetry is not imported here: a
process that set a provider has imported it already (or names one in
``OTEL_PYTHON_TRACER_PROVIDER``), and a worker that traces nothing should not
carry its modules (resident memory) nor read the environment for every job.
The client SDK probes for a provider the same way (``jobqueue.client._tracing``)
but is not imported from here: importing any of ``jobqueue.client`` loads
grpcio, some 12 MiB resident that a worker on the direct Redis path never uses.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.trace import Span, TracerProvider

    from jobqueue.domain import OutcomeKind

    from ._context import JobContext

SYSTEM = "jobqueue"

# A provider named by the environment is loaded by the first get_tracer_provider().
_FROM_ENV = "OTEL_PYTHON_TRACER_PROVIDER" in os.environ
# The global provider, once one is set: OpenTelemetry allows setting it once only.
_provider: TracerProvider | None = None


def _configured() -> TracerProvider | None:
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
        # None set yet: get_tracer_provider() would look the variable up in
        # os.environ (a KeyError) for every job. (An API without this global
        # takes the public path below.)
        return None
    from opentelemetry.trace import ProxyTracerProvider

    provider: TracerProvider = trace.get_tracer_provider()
    if isinstance(provider, ProxyTracerProvider):
        return None
    _provider = provider
    return provider


class RunSpan:
    """The ``process`` span of one run, current while its handler runs."""

    def __init__(self, span: Span, token: object) -> None:
        self._span = span
        self._token = token

    def end(self, kind: OutcomeKind | None, error: BaseException | None) -> None:
        from opentelemetry import context as otel_context
        from opentelemetry import trace
        from opentelemetry.trace import SpanKind, Status, StatusCode

        span = self._span
        outcome = "lost" if kind is None else kind.value
        span.set_attribute("jobqueue.outcome", outcome)
        if error is not None:
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        if kind is not None:
            tracer = trace.get_tracer("jobqueue.worker")
            with tracer.start_as_current_span(
                "settle",
                kind=SpanKind.CLIENT,
                attributes={
                    "messaging.system": SYSTEM,
                    "messaging.operation.type": "settle",
                    "messaging.operation.name": "settle",
                    "jobqueue.outcome": outcome,
                },
            ):
                pass
        otel_context.detach(self._token)  # type: ignore[arg-type]
        span.end()


def start_run(ctx: JobContext) -> RunSpan | None:
    """Start the run's span, if traces are on; call in the run's own task."""
    if _configured() is None:
        return None
    from opentelemetry import context as otel_context
    from opentelemetry import propagate, trace
    from opentelemetry.trace import Link, SpanKind

    producer = propagate.extract(ctx.headers)
    producer_span = trace.get_current_span(producer).get_span_context()
    links = [Link(producer_span)] if ctx.attempt > 1 and producer_span.is_valid else []
    span = trace.get_tracer("jobqueue.worker").start_span(
        f"process {ctx.type}",
        context=producer,
        kind=SpanKind.CONSUMER,
        links=links,
        attributes={
            "messaging.system": SYSTEM,
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.destination.name": ctx.type,
            "messaging.message.id": ctx.id,
            "jobqueue.attempt": ctx.attempt,
        },
    )
    token = otel_context.attach(trace.set_span_in_context(span))
    return RunSpan(span, token)

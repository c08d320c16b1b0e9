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
a run costs one global read more. OpenTelemetry is not imported here: whether
traces are on is the client SDK's probe (``jobqueue.client._otel``, which does
not import it either), and a worker that traces nothing should not carry its
modules (resident memory) nor read the environment for every job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobqueue.client._otel import configured_provider, messaging_attributes

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from jobqueue.domain import OutcomeKind

    from ._context import JobContext


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
                attributes={**messaging_attributes("settle"), "jobqueue.outcome": outcome},
            ):
                pass
        otel_context.detach(self._token)  # type: ignore[arg-type]
        span.end()


def start_run(ctx: JobContext) -> RunSpan | None:
    """Start the run's span, if traces are on; call in the run's own task."""
    if configured_provider() is None:
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
            **messaging_attributes("process", ctx.type),
            "messaging.message.id": ctx.id,
            "jobqueue.attempt": ctx.attempt,
        },
    )
    token = otel_context.attach(trace.set_span_in_context(span))
    return RunSpan(span, token)

"""One trace from the client's enqueue, through the server, to every run of the job.

The OpenTelemetry SDK's in-memory exporter records what the client and the
worker emit: ``send mail`` (producer) with the id the server stored, then a
``process mail`` (consumer) per attempt, each a child of the send span (its
context travelled in the job's ``traceparent`` header, through the server's
store), the retry linked to it too, and a ``settle`` under each run.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from jobqueue.client import AsyncJobClient, InvalidJob, JobStatus
from jobqueue.memory import MemoryJobStore
from jobqueue.worker import JobContext, Worker
from tests.worker.conftest import FAST_SETTINGS, start_test_server

_EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module")
def exporter() -> Iterator[InMemorySpanExporter]:
    # The global provider can be set once per process: this module sets it.
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
    trace.set_tracer_provider(provider)
    yield _EXPORTER
    # Later modules still make spans (the global provider stays), but keep none.
    provider.shutdown()
    _EXPORTER.clear()


def named(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


async def test_enqueue_server_and_every_run_share_one_trace(
    exporter: InMemorySpanExporter,
) -> None:
    exporter.clear()
    store = MemoryJobStore()
    server = await start_test_server(store)
    worker = Worker(server=f"127.0.0.1:{server.port}", settings=FAST_SETTINGS)
    runs: list[dict[str, str]] = []

    @worker.handler("mail", max_attempts=3)
    async def mail(job: JobContext) -> None:
        runs.append(dict(job.headers))
        if job.attempt == 1:
            raise RuntimeError("SMTP 451: try again")

    try:
        await worker.start()
        async with AsyncJobClient(target=f"127.0.0.1:{server.port}") as client:
            job = await client.enqueue("mail", {"to": "a@example.com"}, headers={"tenant": "acme"})
            done = await client.wait(job.id, timeout_s=10)
        assert done.status is JobStatus.COMPLETED
    finally:
        await worker.stop()
        await server.stop(grace_s=None)

    spans = exporter.get_finished_spans()
    [send] = named(spans, "send mail")
    assert send.kind is SpanKind.PRODUCER
    assert send.attributes is not None
    assert send.attributes["messaging.system"] == "jobqueue"
    assert send.attributes["messaging.destination.name"] == "mail"
    assert send.attributes["messaging.message.id"] == job.id
    assert send.context is not None
    trace_id = send.context.trace_id
    # The producer's own headers went along, and the trace context beside them.
    assert all(run["tenant"] == "acme" and "traceparent" in run for run in runs)
    assert job.headers["tenant"] == "acme"

    processes = sorted(named(spans, "process mail"), key=lambda s: s.start_time or 0)
    assert len(processes) == 2
    for attempt, span in enumerate(processes, start=1):
        assert span.kind is SpanKind.CONSUMER
        assert span.context is not None
        assert span.context.trace_id == trace_id
        assert span.parent is not None
        assert span.parent.span_id == send.context.span_id
        assert span.attributes is not None
        assert span.attributes["messaging.message.id"] == job.id
        assert span.attributes["messaging.destination.name"] == "mail"
        assert span.attributes["jobqueue.attempt"] == attempt
    first, retry = processes
    assert first.attributes is not None
    assert first.attributes["jobqueue.outcome"] == "retry"
    assert not first.links
    assert [link.context.span_id for link in retry.links] == [send.context.span_id]

    settles = named(spans, "settle")
    assert {s.parent.span_id for s in settles if s.parent} == {
        p.context.span_id for p in processes if p.context
    }


async def test_bad_headers_are_invalid_argument_and_store_nothing() -> None:
    store = MemoryJobStore()
    server = await start_test_server(store)
    try:
        async with AsyncJobClient(target=f"127.0.0.1:{server.port}") as client:
            with pytest.raises(InvalidJob, match="headers"):
                await client.enqueue("mail", headers={"no spaces": "x"})
            with pytest.raises(InvalidJob, match="headers"):
                await client.enqueue("mail", headers={f"k{i}": "v" for i in range(33)})
            assert (await client.stats()).total.pending == 0
            kept = await client.enqueue("mail", headers={"tenant": "acme"})
            assert (await client.get(kept.id)).headers["tenant"] == "acme"
    finally:
        await server.stop(grace_s=None)

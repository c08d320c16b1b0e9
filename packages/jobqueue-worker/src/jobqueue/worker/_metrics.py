"""The worker's own Prometheus metrics: what its handlers did, as they did it.

The server's ``/metrics`` reports the store's counters, the truth over every
process; a worker reports what only it sees: how long each handler ran, how
each run ended, and how full its slots are. They go into a registry the user
gives (to be served with the rest of the application's metrics), or into one
of the worker's own served on ``metrics_port``.

Queue wait and end to end are observed where the run starts and ends, by the
worker's clock against the job's times (stamped by Redis or the server):
clock skew between hosts shows in them, which is why they are histograms
with coarse buckets, not exact figures.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from jobqueue.domain import OutcomeKind

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from ._context import JobContext

# Handlers run from milliseconds to hours: buckets up to an hour.
_DURATION_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600,
)  # fmt: skip

_OUTCOMES = {
    OutcomeKind.COMPLETE: "completed",
    OutcomeKind.FAIL: "failed",
    OutcomeKind.RETRY: "retried",
    OutcomeKind.CANCELLED: "cancelled",
    OutcomeKind.RELEASE: "released",
}


class WorkerMetrics:
    """Handler durations, outcomes, queue wait, end to end, and slots of one worker."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        # Not the process-global registry by default: two workers in one
        # process (tests, a supervisor) would collide on it.
        self.registry = registry if registry is not None else CollectorRegistry()
        self.runs = Counter(
            "jobqueue_worker_runs",
            "Handler runs that ended, by type and outcome "
            "(completed, failed, retried, cancelled, released, lost).",
            ["type", "outcome"],
            registry=self.registry,
        )
        self.handler_seconds = Histogram(
            "jobqueue_worker_handler_duration_seconds",
            "How long a handler ran, by type and outcome.",
            ["type", "outcome"],
            buckets=_DURATION_BUCKETS,
            registry=self.registry,
        )
        self.queue_wait_seconds = Histogram(
            "jobqueue_worker_queue_wait_seconds",
            "From the job being due (created, if it was due earlier) to its run starting, by "
            "type: a deliberate delay is not waiting.",
            ["type"],
            buckets=_DURATION_BUCKETS,
            registry=self.registry,
        )
        self.end_to_end_seconds = Histogram(
            "jobqueue_worker_end_to_end_seconds",
            "From the job's creation to the end of its last run (completed or failed), by type.",
            ["type"],
            buckets=_DURATION_BUCKETS,
            registry=self.registry,
        )
        # Not jobqueue_worker_slots: the server exports that name for every live
        # worker's slots by state, and a sum over both would mix the two.
        self.slots = Gauge(
            "jobqueue_worker_concurrency",
            "Jobs this worker runs at once at most.",
            registry=self.registry,
        )
        self.busy = Gauge(
            "jobqueue_worker_busy_slots",
            "Jobs in flight now (running, or waiting for their outcome to be stored).",
            registry=self.registry,
        )
        self._server: WSGIServer | None = None
        self.port: int | None = None
        """The bound port while serving, else None."""

    def bind(self, *, concurrency: int, busy: Callable[[], float]) -> None:
        """Report the worker's slots; ``busy`` is read at each scrape."""
        self.slots.set(concurrency)
        self.busy.set_function(busy)

    def started(self, ctx: JobContext) -> None:
        waited_from = max(ctx._lease.job.execution_time_ms, ctx._lease.job.created_at)
        self.queue_wait_seconds.labels(type=ctx.type).observe(
            max(time.time() * 1000 - waited_from, 0) / 1000
        )

    def ended(self, ctx: JobContext, kind: OutcomeKind | None, duration_s: float) -> None:
        """``kind`` None: the lease was lost, the run's verdict discarded."""
        outcome = "lost" if kind is None else _OUTCOMES[kind]
        self.runs.labels(type=ctx.type, outcome=outcome).inc()
        self.handler_seconds.labels(type=ctx.type, outcome=outcome).observe(duration_s)
        if kind is OutcomeKind.COMPLETE or kind is OutcomeKind.FAIL:
            self.end_to_end_seconds.labels(type=ctx.type).observe(
                max(time.time() * 1000 - ctx._lease.job.created_at, 0) / 1000
            )

    def serve(self, *, host: str, port: int) -> int:
        """Serve the registry over HTTP in a thread; returns the bound port."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        self._server = server
        bound: int = server.server_port
        self.port = bound
        return bound

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
            self.port = None

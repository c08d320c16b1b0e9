"""Prometheus metrics: ``GET /metrics`` on the API's port, and on their own port when
``JOBQUEUE_METRICS_PORT`` is set.

The job counters (``jobqueue_jobs_<kind>_total{type}``) are the store's own
(``jobqueue.domain.JobCounters``): every server reports the same values,
whichever server or direct worker made the transitions, and they survive
restarts. A custom collector exposes the last values read, refreshed by the
server's observe loop every few seconds: a scrape never waits on the store.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from wsgiref.simple_server import WSGIServer

import grpc
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from jobqueue.domain import COUNTER_KINDS, QueueStats, TypeCounters, WorkerInfo

_log = logging.getLogger(__name__)

_COUNTS = ("pending", "scheduled", "running", "completed", "failed", "cancelled")

# ClaimJobs long-polls for up to 30 s: the buckets reach past it.
_RPC_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


_COUNTER_HELP = {
    "enqueued": "Jobs put in the queue, by type: stored (an idempotent or unique duplicate "
    "stores nothing), or brought back by an operator's retry.",
    "completed": "Jobs that ended COMPLETED, by type.",
    "failed": "Jobs that ended FAILED (attempts spent, a fail verdict, or a lease lost on the "
    "last attempt), by type.",
    "retried": "Attempts a worker retried (back to PENDING for another attempt), by type.",
    "cancelled": "Jobs that ended CANCELLED, by type.",
    "leases_expired": "Leases that expired (worker died, hung or lost) and were handed back "
    "or ended, by type.",
}


class StoreCounters(Collector):
    """The store's cumulative counters as Prometheus counters, from the last read."""

    def __init__(self) -> None:
        self.rows: list[TypeCounters] = []

    def collect(self) -> Iterator[Metric]:
        rows = self.rows
        for kind in COUNTER_KINDS:
            family = CounterMetricFamily(
                f"jobqueue_jobs_{kind}", _COUNTER_HELP[kind], labels=["type"]
            )
            for row in rows:
                family.add_metric([row.type], getattr(row, kind))
            yield family


class Metrics:
    """The queue as numbers: jobs per type and status, store health, expired leases, calls.

    It is also the ``RpcObserver`` of the server's ``ObservingInterceptor``:
    calls by method and status code, and their latency by method.

    A registry of its own (not the process-global one) so that several servers
    in one process — the tests — do not collide.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.jobs = Gauge(
            "jobqueue_jobs",
            "Jobs the store holds, by type and status (scheduled: pending, due later).",
            ["type", "status"],
            registry=self.registry,
        )
        self.oldest_pending_age = Gauge(
            "jobqueue_oldest_pending_age_seconds",
            "How long the earliest due PENDING job of a type has waited (0: none is due).",
            ["type"],
            registry=self.registry,
        )
        self.type_workers = Gauge(
            "jobqueue_type_workers",
            "Live workers that handle a type (0 with due jobs: nobody will run them).",
            ["type"],
            registry=self.registry,
        )
        self.workers = Gauge(
            "jobqueue_workers", "Live workers (heartbeating), all types.", registry=self.registry
        )
        self.worker_slots = Gauge(
            "jobqueue_worker_slots",
            "Handler slots of the live workers, by state (busy or idle).",
            ["state"],
            registry=self.registry,
        )
        self.counters = StoreCounters()
        self.registry.register(self.counters)
        self.store_up = Gauge(
            "jobqueue_store_up", "1 while the store answers pings.", registry=self.registry
        )
        self.expired_leases = Counter(
            "jobqueue_expired_leases",
            "Leases that expired (their worker died or hung) and were handed back.",
            registry=self.registry,
        )
        self.rpc_requests = Counter(
            "jobqueue_rpc_requests",
            "Finished gRPC calls, by method (/package.Service/Method) and status code.",
            ["method", "code"],
            registry=self.registry,
        )
        self.rpc_seconds = Histogram(
            "jobqueue_rpc_duration_seconds",
            "Time from a call's arrival to its status, by method (streams: until they end).",
            ["method"],
            buckets=_RPC_BUCKETS,
            registry=self.registry,
        )
        # Each call's series, looked up once per (method, code): ``labels()``
        # checks and joins its label values on every call, which showed in the
        # server's cost per enqueue. The series are never removed, so a
        # child found once stays the one exported.
        self._rpc_series: dict[tuple[str, grpc.StatusCode], tuple[Counter, Histogram]] = {}
        self._http: tuple[WSGIServer, threading.Thread] | None = None

    def observe(self, *, method: str, code: grpc.StatusCode, duration_s: float) -> None:
        series = self._rpc_series.get((method, code))
        if series is None:
            series = (
                self.rpc_requests.labels(method=method, code=code.name),
                self.rpc_seconds.labels(method=method),
            )
            self._rpc_series[(method, code)] = series
        series[0].inc()
        series[1].observe(duration_s)

    def observe_stats(self, stats: QueueStats) -> None:
        self.jobs.clear()
        self.oldest_pending_age.clear()
        self.type_workers.clear()
        for row in stats.types:
            for status in _COUNTS:
                self.jobs.labels(type=row.type, status=status).set(getattr(row, status))
            self.oldest_pending_age.labels(type=row.type).set(row.oldest_pending_age_ms / 1000)
            self.type_workers.labels(type=row.type).set(row.workers)

    def observe_counters(self, rows: list[TypeCounters]) -> None:
        self.counters.rows = rows

    def observe_workers(self, workers: list[WorkerInfo]) -> None:
        self.workers.set(len(workers))
        busy = sum(worker.busy for worker in workers)
        self.worker_slots.labels(state="busy").set(busy)
        self.worker_slots.labels(state="idle").set(
            sum(worker.concurrency for worker in workers) - busy
        )

    def exposition(self) -> tuple[bytes, str]:
        """The text format and its content type, for ``GET /metrics`` on the API's port."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def serve(self, *, host: str, port: int) -> int:
        """Start the HTTP endpoint in a thread; returns the bound port."""
        server, thread = start_http_server(port, addr=host, registry=self.registry)
        self._http = (server, thread)
        bound: int = server.server_port
        _log.info("serving metrics on %s:%d", host, bound)
        return bound

    def close(self) -> None:
        if self._http is not None:
            server, thread = self._http
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
            self._http = None

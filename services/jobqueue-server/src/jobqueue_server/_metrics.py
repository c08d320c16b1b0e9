"""Prometheus metrics: ``GET /metrics`` on the API's port, and on their own port when
``JOBQUEUE_METRICS_PORT`` is set."""

from __future__ import annotations

import logging
import threading
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

from jobqueue.domain import QueueStats

_log = logging.getLogger(__name__)

_COUNTS = ("pending", "scheduled", "running", "completed", "failed", "cancelled")

# ClaimJobs long-polls for up to 30 s: the buckets reach past it.
_RPC_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


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
        self._http: tuple[WSGIServer, threading.Thread] | None = None

    def observe(self, *, method: str, code: grpc.StatusCode, duration_s: float) -> None:
        self.rpc_requests.labels(method=method, code=code.name).inc()
        self.rpc_seconds.labels(method=method).observe(duration_s)

    def observe_stats(self, stats: QueueStats) -> None:
        self.jobs.clear()
        for row in stats.types:
            for status in _COUNTS:
                self.jobs.labels(type=row.type, status=status).set(getattr(row, status))

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

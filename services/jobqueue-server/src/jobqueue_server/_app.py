"""Running the server: start, background sweeps, graceful stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import grpc

from jobqueue.connect import HttpServer, WireApp, start_http_server
from jobqueue.dashboard import Dashboard, DashboardSettings
from jobqueue.domain import (
    DEFAULT_SAMPLE_INTERVAL_MS,
    DEFAULT_SAMPLES_KEPT,
    JobCounters,
    JobStore,
    PresenceStore,
    ScheduleService,
    StoreUnavailable,
)
from jobqueue.grpc import (
    BearerTokenAuth,
    ObservingInterceptor,
    RunningServer,
    ScheduleServicer,
    ServerTls,
    StoreHealth,
    start_server,
)
from jobqueue.redis import (
    RedisJobStore,
    RedisStoreSettings,
    ShardLayoutMismatch,
    redis_warnings,
)

from ._cors import CrossOrigin
from ._metrics import Metrics
from ._schedules import schedule_service_for, start_firing
from .containers import Container

_log = logging.getLogger(__name__)


class AddressUnavailable(Exception):
    """The server could not bind its address: the operator's fix, told in one line."""


_STATS_INTERVAL_S = 5.0


class App:
    """The server's lifetime: what ``jobqueue-server`` starts and SIGTERM stops."""

    def __init__(self, container: Container) -> None:
        self._container = container
        self._settings = container.settings()
        self._store: JobStore | None = None
        self._running: RunningServer | None = None
        self._http: HttpServer | None = None
        self._health: StoreHealth | None = None
        self._metrics: Metrics | None = None
        self._metrics_port: int | None = None
        self._dashboard: Dashboard | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def port(self) -> int:
        """The bound port (useful when configured as 0)."""
        if self._http is not None:
            return self._http.port
        if self._running is None:
            raise RuntimeError("the server is not started")
        return self._running.port

    @property
    def metrics_port(self) -> int | None:
        """The bound metrics port, None when metrics are off."""
        return self._metrics_port

    async def start(self) -> None:
        container = self._container
        # Security material first: a bad token file or certificate stops the
        # start before anything is bound or connected.
        auth = container.auth()
        tls = container.tls()
        self._store = container.store()
        if isinstance(self._store, RedisJobStore):
            await _check_layout(self._store)
        self._schedules = schedule_service_for(
            self._store, clock=container.clock(), ids=container.ids(), limits=container.limits()
        )
        try:
            if self._settings.wire == "http":
                await self._start_http(auth, tls)
            else:
                await self._start_grpcio(auth, tls)
        except OSError as error:
            # Both transports report a failed bind as OSError("cannot listen
            # on ..."): a busy port is the operator's to fix, not a crash.
            await self._store.close()
            raise AddressUnavailable(
                f"{error}; is another server running there? set JOBQUEUE_PORT or --port"
            ) from error
        if self._metrics is not None:
            if self._settings.metrics_port is not None:
                self._metrics_port = self._metrics.serve(
                    host=self._settings.host, port=self._settings.metrics_port
                )
            self._tasks.append(
                asyncio.create_task(
                    self._observe(self._store, self._metrics), name="jobqueue-metrics"
                )
            )
        self._tasks.append(
            asyncio.create_task(self._sweep(self._store), name="jobqueue-lease-sweep")
        )
        if isinstance(self._store, JobCounters):
            # The dashboard's charts read this series: sample at their pace.
            interval_ms = (
                DEFAULT_SAMPLE_INTERVAL_MS
                if self._dashboard is None
                else self._dashboard.settings.sample_interval_ms
            )
            self._tasks.append(
                asyncio.create_task(
                    _sample_history(self._store, interval_ms), name="jobqueue-history"
                )
            )
        if self._schedules is not None:
            self._tasks.append(start_firing(self._schedules))
        if isinstance(self._store, RedisJobStore):
            self._tasks.append(
                asyncio.create_task(
                    _warn_about_redis(self._store.settings), name="jobqueue-redis-check"
                )
            )
        _log.info(
            "jobqueue-server listening on %s:%d (%s store)",
            self._settings.host,
            self.port,
            self._settings.store_kind,
        )

    def _schedule_servicer(self) -> ScheduleServicer | None:
        return None if self._schedules is None else ScheduleServicer(self._schedules)

    async def _start_http(self, auth: BearerTokenAuth | None, tls: ServerTls | None) -> None:
        """gRPC, Connect and gRPC-Web on the one port, with /healthz and /metrics beside them."""
        container = self._container
        self._metrics = Metrics()
        self._health = container.health()
        app = WireApp(
            job_servicer=container.job_servicer(),
            worker_servicer=container.worker_servicer(),
            health=self._health,
            options=container.options(),
            auth=auth,
            observer=self._metrics,
            metrics=self._metrics.exposition,
            schedule_servicer=self._schedule_servicer(),
            admin_servicer=container.admin_servicer(),
        )
        self._dashboard = _dashboard(
            self._container, api_protected=auth is not None, schedules=self._schedules
        )
        api: WireApp | CrossOrigin = app
        origins = self._settings.cors_origin_list
        if origins:
            # Around the API only: the dashboard is same-origin, and stays so.
            api = CrossOrigin(app, origins)
            _log.info("browsers may call the API from %s (CORS)", ", ".join(origins))
        served = api if self._dashboard is None else self._dashboard.mount(api)
        await self._health.start()
        try:
            self._http = await start_http_server(
                served,
                address=self._settings.address,
                tls=tls,
                max_message_bytes=self._settings.max_message_bytes,
                grace_s=self._settings.shutdown_grace_s,
            )
        except BaseException:
            await self._health.shutdown()
            raise
        if self._dashboard is not None:
            self._tasks.append(
                asyncio.create_task(self._dashboard.sample_forever(), name="jobqueue-dashboard")
            )

    async def _start_grpcio(self, auth: BearerTokenAuth | None, tls: ServerTls | None) -> None:
        """The grpcio server: gRPC alone (JOBQUEUE_WIRE=grpcio), kept to compare the two."""
        container = self._container
        if self._settings.cors_origin_list:
            _log.warning(
                "JOBQUEUE_CORS_ORIGINS does nothing with JOBQUEUE_WIRE=grpcio (no browsers)"
            )
        interceptors: list[grpc.aio.ServerInterceptor[Any, Any]] = []
        if self._settings.metrics_port is not None:
            self._metrics = Metrics()
            # First, so that calls the auth interceptor refuses are counted too.
            interceptors.append(ObservingInterceptor(self._metrics))
        if auth is not None:
            interceptors.append(auth)
        self._running = await start_server(
            address=self._settings.address,
            job_servicer=container.job_servicer(),
            worker_servicer=container.worker_servicer(),
            health=container.health(),
            options=container.options(),
            tls=tls,
            interceptors=interceptors,
            schedule_servicer=self._schedule_servicer(),
            admin_servicer=container.admin_servicer(),
        )

    async def stop(self) -> None:
        """Refuse new calls, let calls in flight finish within the grace, close the store."""
        grace = self._settings.shutdown_grace_s
        if self._running is not None or self._http is not None:
            # Workers hold a WatchCancellations stream for as long as they run:
            # end those first, or they keep the server for the whole grace.
            await self._container.worker_servicer().stop_streams()
        if self._dashboard is not None:
            self._dashboard.close()  # ends open browser tabs' live streams
        if self._running is not None:
            _log.info("stopping: calls in flight have %.1f s to finish", grace)
            await self._running.stop(grace)
            self._running = None
        if self._http is not None:
            _log.info("stopping: calls in flight have %.1f s to finish", grace)
            # NOT_SERVING first, so probes see the server leave before its port closes.
            if self._health is not None:
                await self._health.shutdown()
            await self._http.stop(grace)
            self._http = None
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._metrics is not None:
            self._metrics.close()
            self._metrics = None
            self._metrics_port = None
        if self._store is not None:
            await self._store.close()
            self._store = None
        _log.info("stopped")

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set, then stop gracefully."""
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()

    async def _sweep(self, store: JobStore) -> None:
        """Hand back leases of dead workers.

        Workers that talk to the server over gRPC cannot sweep a store they do
        not reach, and the in-memory store lives only here: so the server sweeps,
        whatever the store.
        """
        while True:
            await asyncio.sleep(self._settings.sweep_interval_s)
            try:
                # The lock lets one of many servers and workers sweep per
                # interval (a little less, so this one's next round is not skipped).
                lock_ms = int(self._settings.sweep_interval_s * 800)
                expired = await store.requeue_expired(lock_ms=lock_ms)
            except Exception as error:  # the store may be down; health reports that
                _log.debug("lease sweep failed: %s", error)
                continue
            if expired:
                _log.info("handed back %d jobs whose lease expired", expired)
                if self._metrics is not None:
                    self._metrics.expired_leases.inc(expired)

    async def _observe(self, store: JobStore, metrics: Metrics) -> None:
        health = self._container.health()
        # Read at each scrape, as /healthz is: copied once per stats round, it
        # lagged health by up to 5 s.
        metrics.store_up.set_function(lambda: 1 if health.healthy else 0)
        while True:
            try:
                metrics.observe_stats(await store.stats())
                if isinstance(store, JobCounters):
                    metrics.observe_counters(await store.counters())
                if isinstance(store, PresenceStore):
                    metrics.observe_workers(await store.list_workers())
            except Exception as error:
                _log.debug("collecting queue stats failed: %s", error)
            await asyncio.sleep(_STATS_INTERVAL_S)


async def _sample_history(store: JobCounters, interval_ms: int) -> None:
    """Sample the store's counters into its history, for the dashboard's charts.

    Every server samples; the store writes one sample per bucket, so their
    number does not matter. Sampling twice per bucket keeps no gap when one
    round comes late.
    """
    while True:
        try:
            await store.record_sample(interval_ms=interval_ms, keep=DEFAULT_SAMPLES_KEPT)
        except Exception as error:  # the store may be down; health reports that
            _log.debug("sampling the counters failed: %s", error)
        await asyncio.sleep(interval_ms / 2000)


def _dashboard(
    container: Container, *, api_protected: bool, schedules: ScheduleService | None = None
) -> Dashboard | None:
    """The dashboard on the HTTP port, unless off, or open beside an API that needs a token."""
    settings = DashboardSettings.from_env()
    if not settings.enabled:
        return None
    if api_protected and not settings.auth_required:
        # An open dashboard would let anyone cancel what the API guards.
        _log.warning(
            "dashboard off: the API needs a token but no JOBQUEUE_DASHBOARD_TOKEN "
            "(or JOBQUEUE_DASHBOARD_READONLY_TOKEN) is set"
        )
        return None
    if not settings.auth_required:
        _log.warning("no JOBQUEUE_DASHBOARD_TOKEN: the dashboard at %s/ is open", settings.prefix)
    elif settings.short_tokens:
        _log.warning("a dashboard token is shorter than 16 characters: easy to guess")
    store = container.store()
    return Dashboard(
        container.job_service(),
        clock=container.clock(),
        settings=settings,
        gates=container.gate_service(),
        admin=container.admin_service(),
        presence=container.presence_service(),
        schedules=schedules,
        # The charts read the series every server samples (_sample_history).
        counters=store if isinstance(store, JobCounters) else None,
    )


async def _check_layout(store: RedisJobStore) -> None:
    """Stop the start when JOBQUEUE_REDIS_SHARDS disagrees with the layout Redis records.

    Otherwise the server would bind, report healthy, and fail every call with
    the same ShardLayoutMismatch. A Redis that does not answer yet does not
    hold the start (health reports it); the store checks at its first call.
    """
    try:
        shards = await store.check_layout()
    except ShardLayoutMismatch:
        await store.close()
        raise
    except StoreUnavailable as error:
        _log.warning("could not check the shard layout at start: %s", error)
        return
    _log.debug("key prefix %r: %d virtual shard(s)", store.settings.key_prefix, shards)


async def _warn_about_redis(settings: RedisStoreSettings) -> None:
    """Log what in Redis's configuration can lose jobs; in the background, so a slow
    or absent Redis does not hold the start (health reports it)."""
    try:
        warnings = await redis_warnings(settings)
    except StoreUnavailable as error:
        _log.warning("could not check Redis's persistence settings at start: %s", error)
        return
    for warning in warnings:
        _log.warning("%s", warning)

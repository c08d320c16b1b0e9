"""The wire app: one ASGI application answering gRPC, Connect and gRPC-Web, plus operations.

connectrpc picks the protocol of each request from its content type
(``application/grpc*``, ``application/grpc-web*``, ``application/proto`` or
``application/json`` for Connect unary, ``application/connect+*`` for Connect
streams), so one table of endpoints serves all three. Beside it, the same
port answers ``GET /healthz`` (the store's verdict, for HTTP probes) and, when
metrics are on, ``GET /metrics``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, cast

from connectrpc.interceptor import Interceptor
from connectrpc.server import ConnectASGIApplication, Endpoint

# The one place that knows which keyword an observer takes (see _interceptors).
from jobqueue.grpc import (
    ADMIN_SERVICE_NAME,
    JOB_SERVICE_NAME,
    OPEN_SERVICES,
    SCHEDULE_SERVICE_NAME,
    WORKER_SERVICE_NAME,
    AdminServicer,
    BearerTokenAuth,
    JobServicer,
    RpcObserver,
    ScheduleServicer,
    ServerOptions,
    StoreHealth,
    WorkerServicer,
    observation_reporter,
)
from mpataki.jobqueue.v1 import admin_pb2, jobqueue_pb2, schedule_pb2, worker_pb2

from ._codecs import wire_codecs
from ._endpoints import service_endpoints
from ._extras import HEALTH_SERVICE, health_endpoints, reflection_endpoints
from ._fast import FastUnary, fast_methods
from ._fast_watch import claim_hand_back
from ._interceptors import AuthInterceptor, ObservingInterceptor

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
MetricsExposition = Callable[[], tuple[bytes, str]]
"""Renders the metrics: the body and its content type."""


class _Services(ConnectASGIApplication[None]):
    """Every RPC endpoint in one connectrpc application."""

    def __init__(self, endpoints: Mapping[str, Endpoint[Any, Any]], **kwargs: Any) -> None:
        # Every value is one of Endpoint's concrete kinds (its factories make
        # nothing else); connectrpc's signature names the kinds' union.
        super().__init__(service=None, endpoints=lambda _: cast(Any, endpoints), **kwargs)

    @property
    def path(self) -> str:
        return "/"


class WireApp:
    """JobService, WorkerService, health and reflection on every protocol; /healthz, /metrics.

    Interceptors run in this order: metrics first (so refusals are counted),
    then authentication; both before the request body is read.
    """

    def __init__(
        self,
        *,
        job_servicer: JobServicer,
        worker_servicer: WorkerServicer,
        health: StoreHealth,
        options: ServerOptions | None = None,
        auth: BearerTokenAuth | None = None,
        observer: RpcObserver | None = None,
        metrics: MetricsExposition | None = None,
        open_services: Iterable[str] = OPEN_SERVICES,
        schedule_servicer: ScheduleServicer | None = None,
        admin_servicer: AdminServicer | None = None,
    ) -> None:
        options = options or ServerOptions()
        services = [JOB_SERVICE_NAME, WORKER_SERVICE_NAME]
        if schedule_servicer is not None:
            services.append(SCHEDULE_SERVICE_NAME)
        if admin_servicer is not None:
            services.append(ADMIN_SERVICE_NAME)
        endpoints: dict[str, Endpoint[Any, Any]] = {
            **service_endpoints(
                jobqueue_pb2.DESCRIPTOR.services_by_name["JobService"], job_servicer
            ),
            **service_endpoints(
                worker_pb2.DESCRIPTOR.services_by_name["WorkerService"], worker_servicer
            ),
            **health_endpoints(health),
            **reflection_endpoints([*services, HEALTH_SERVICE]),
        }
        if schedule_servicer is not None:
            endpoints.update(
                service_endpoints(
                    schedule_pb2.DESCRIPTOR.services_by_name["ScheduleService"], schedule_servicer
                )
            )
        if admin_servicer is not None:
            endpoints.update(
                service_endpoints(
                    admin_pb2.DESCRIPTOR.services_by_name["AdminService"], admin_servicer
                )
            )
        interceptors: list[Interceptor] = []
        if observer is not None:
            interceptors.append(ObservingInterceptor(observer))
        if auth is not None:
            interceptors.append(AuthInterceptor(auth, open_services=frozenset(open_services)))
        self._rpc = _Services(
            endpoints,
            interceptors=interceptors,
            read_max_bytes=options.max_message_bytes,
            codecs=wire_codecs(),
        )
        self._paths = frozenset(endpoints)
        # The producers' and workers' calls: plain gRPC unary ones skip
        # connectrpc's per-call machinery (_fast.py), the rest go through it.
        self._fast = FastUnary(
            {
                **fast_methods(
                    jobqueue_pb2.DESCRIPTOR.services_by_name["JobService"], job_servicer
                ),
                **fast_methods(
                    worker_pb2.DESCRIPTOR.services_by_name["WorkerService"],
                    worker_servicer,
                    watched=frozenset({"ClaimJobs"}),
                    hand_backs={"ClaimJobs": claim_hand_back(worker_servicer.SettleJobs)},
                ),
            },
            fallback=self._rpc,
            auth=auth,
            open_services=frozenset(open_services),
            report=None if observer is None else observation_reporter(observer),
            read_max_bytes=options.max_message_bytes,
        )
        self._health = health
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await _lifespan(receive, send)
            return
        if kind != "http":
            return  # no websockets here
        path = scope["path"]
        if scope["method"] in ("GET", "HEAD") and path in ("/healthz", "/metrics"):
            await self._operations(path, send)
            return
        if path in self._fast:
            await self._fast(scope, receive, send)
            return
        if path not in self._paths:
            # Not one of ours: 404, which gRPC clients read as UNIMPLEMENTED.
            await _respond(send, 404, b"no such method\n", "text/plain; charset=utf-8")
            return
        await self._rpc(scope, receive, send)

    async def _operations(self, path: str, send: Send) -> None:
        if path == "/healthz":
            healthy = self._health.status("") == 1  # SERVING
            body = b"ok\n" if healthy else b"store unavailable\n"
            await _respond(send, 200 if healthy else 503, body, "text/plain; charset=utf-8")
            return
        if self._metrics is None:
            await _respond(send, 404, b"metrics are off\n", "text/plain; charset=utf-8")
            return
        body, content_type = self._metrics()
        await _respond(send, 200, body, content_type)


async def _respond(send: Send, status: int, body: bytes, content_type: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    """The server's lifetime is the App's, not the ASGI server's: acknowledge and carry on."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return

"""The HTTP transport of jobqueue: gRPC, the Connect protocol and gRPC-Web on one port.

One ASGI app (``WireApp``) serves ``JobService`` and ``WorkerService`` through
the gRPC adapter's servicers and status table, with grpc.health.v1, server
reflection v1 and v1alpha, ``/healthz`` and ``/metrics``; ``start_http_server``
runs it under h2corn (HTTP/1.1 and h2c on one port, or TLS with ALPN).
"""

from ._app import MetricsExposition, WireApp
from ._endpoints import CONNECT_CODES, GRPC_CODES, ServicerContext, connect_error, service_endpoints
from ._extras import HEALTH_SERVICE, REFLECTION_V1, REFLECTION_V1ALPHA
from ._interceptors import AuthInterceptor, ObservingInterceptor
from ._server import HttpServer, start_http_server

__all__ = [
    # The app
    "WireApp",
    "MetricsExposition",
    "service_endpoints",
    "ServicerContext",
    # Serving it
    "start_http_server",
    "HttpServer",
    # Cross-cutting
    "AuthInterceptor",
    "ObservingInterceptor",
    # Codes
    "CONNECT_CODES",
    "GRPC_CODES",
    "connect_error",
    # Service names
    "HEALTH_SERVICE",
    "REFLECTION_V1",
    "REFLECTION_V1ALPHA",
]

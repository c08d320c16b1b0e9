"""The public surface of ``jobqueue.connect``, pinned."""

from __future__ import annotations

import grpc
from connectrpc.code import Code

import jobqueue.connect
from jobqueue.connect import CONNECT_CODES, GRPC_CODES


def test_connect_exports_are_pinned() -> None:
    assert jobqueue.connect.__all__ == (
        [
            "WireApp",
            "MetricsExposition",
            "service_endpoints",
            "ServicerContext",
            "start_http_server",
            "HttpServer",
            "AuthInterceptor",
            "ObservingInterceptor",
            "CONNECT_CODES",
            "GRPC_CODES",
            "connect_error",
            "HEALTH_SERVICE",
            "REFLECTION_V1",
            "REFLECTION_V1ALPHA",
        ]
    )
    for name in jobqueue.connect.__all__:
        assert hasattr(jobqueue.connect, name), name


def test_every_grpc_code_but_ok_has_its_connect_twin_and_back() -> None:
    assert set(CONNECT_CODES) == set(grpc.StatusCode) - {grpc.StatusCode.OK}
    assert set(CONNECT_CODES.values()) == set(Code)
    for status, code in CONNECT_CODES.items():
        assert GRPC_CODES[code] is status
        assert code.value.replace("canceled", "cancelled").upper() == status.name

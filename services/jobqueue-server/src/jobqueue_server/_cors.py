"""Cross-origin calls from browsers: CORS for the Connect and gRPC-Web protocols.

A browser app served from another origin (``https://app.example.com`` calling
``https://jobs.example.com``) may only call the API when the server says so:
the browser first sends a preflight (``OPTIONS`` with ``Origin`` and
``Access-Control-Request-*``) and reads only the response headers the server
exposes. The lists are the ones Connect documents for its protocols and
gRPC-Web (the connectrpc CORS guide, and its Go package ``cors``), plus
``Authorization`` for our bearer tokens. Starlette's ``CORSMiddleware`` does
the protocol; this only decides which requests it sees.

Off unless origins are configured (``JOBQUEUE_CORS_ORIGINS``): same-origin
pages (the dashboard) need none of it. POSTs without an ``Origin`` header,
every gRPC client and worker, skip the middleware and cost nothing more.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from starlette.middleware.cors import CORSMiddleware
from starlette.types import Receive, Scope, Send

HostApp = Callable[..., Awaitable[Any]]
"""Any ASGI app: ours spell ASGI's types as plain dicts, Starlette's as mappings."""

ALLOWED_METHODS = ("GET", "POST")
"""gRPC-Web posts; Connect posts, and may GET a side-effect-free call."""

ALLOWED_HEADERS = (
    "Content-Type",
    "Connect-Protocol-Version",
    "Connect-Timeout-Ms",
    "Grpc-Timeout",
    "X-Grpc-Web",
    "X-User-Agent",
    "Authorization",
)
"""Request headers a browser client sends: Connect's and gRPC-Web's, and our token's."""

EXPOSED_HEADERS = ("Grpc-Status", "Grpc-Message", "Grpc-Status-Details-Bin")
"""Response headers a gRPC-Web client must read (its status travels in them)."""

MAX_AGE_S = 7200
"""How long a browser may cache a preflight's answer (Chrome's own cap)."""

_ORIGIN = re.compile(r"(https?)://([^\s/?#@:]+)(?::([0-9]{1,5}))?", re.IGNORECASE)
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def parse_origins(text: str) -> tuple[str, ...]:
    """``JOBQUEUE_CORS_ORIGINS``: comma-separated origins, or ``*`` for any.

    An origin is what a browser sends: scheme and host, and a port when not
    the default (``https://app.example.com``, ``http://localhost:3000``); no
    path, no trailing slash, no user. Each is written as a browser writes it
    (lower case, a default port dropped), since the match is exact. Raises
    ValueError naming an entry that is no origin, since it would never match
    and the mistake would show only as a browser's refusal.
    """
    origins: list[str] = []
    for part in text.split(","):
        entry = part.strip()
        if not entry:
            continue
        if entry == "*":
            origins.append(entry)
            continue
        found = _ORIGIN.fullmatch(entry)
        if found is None:
            raise ValueError(
                f"{entry!r} is not an origin: scheme://host[:port], no path "
                "(e.g. https://app.example.com), or * for any"
            )
        scheme, host, port = found.group(1).lower(), found.group(2).lower(), found.group(3)
        port = None if port == _DEFAULT_PORTS[scheme] else port
        origins.append(f"{scheme}://{host}" + (f":{port}" if port else ""))
    if "*" in origins and len(origins) > 1:
        raise ValueError("* allows every origin: list origins, or * alone")
    return tuple(origins)


class CrossOrigin:
    """``app`` answering browsers of ``origins`` across origins (see the module)."""

    def __init__(self, app: HostApp, origins: Sequence[str]) -> None:
        self._app = app
        self._cors = CORSMiddleware(
            app,
            allow_origins=origins,
            allow_methods=ALLOWED_METHODS,
            allow_headers=ALLOWED_HEADERS,
            expose_headers=EXPOSED_HEADERS,
            max_age=MAX_AGE_S,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            # A GET (/healthz, /metrics, a Connect GET) may be cached: it goes
            # through the middleware, which marks every answer "Vary: Origin".
            # A POST without Origin (every gRPC client and worker) skips it.
            if scope["method"] == "GET":
                await self._cors(scope, receive, send)
                return
            for name, _ in scope["headers"]:
                if name == b"origin":
                    await self._cors(scope, receive, send)
                    return
        await self._app(scope, receive, send)

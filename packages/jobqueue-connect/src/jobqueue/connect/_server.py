"""Serving the wire app with h2corn: HTTP/1.1, h2c (prior knowledge) and TLS on one port.

h2corn does its HTTP work (both HTTP versions, TLS with ALPN, gRPC's
trailers) in Rust threads and calls the ASGI app on the server's own event
loop, embedded (``h2corn.Server``): the store, the sweeps and the calls share
one process and one loop, as they did with grpcio. Measured against grpcio's
server on the same servicers it answers gRPC clients faster, sequentially and
concurrently (docs/benchmarks.md, "The wire").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h2corn

from jobqueue.grpc import ServerTls

_log = logging.getLogger(__name__)


@dataclass(slots=True)
class HttpServer:
    """A running server: the port it bound, and how to stop it."""

    port: int
    _server: h2corn.Server
    _task: asyncio.Task[None]

    async def stop(self, grace_s: float | None = None, *, grace: float | None = None) -> None:
        """Stop accepting, give requests in flight their grace, then end them.

        The grace is the one given to ``start_http_server`` (h2corn fixes it
        at start); ``grace_s`` is taken for the same call shape as
        ``RunningServer.stop``, and ``grace`` is its deprecated name.
        """
        if grace is not None:
            _deprecated_grace("HttpServer.stop")
        self._server.shutdown()
        await self.wait_closed()

    async def wait_closed(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@contextlib.contextmanager
def _tls_files(tls: ServerTls | None) -> Iterator[dict[str, Any]]:
    """h2corn reads TLS material from files: write it to a private directory, for the start only."""
    if tls is None:
        yield {}
        return
    with tempfile.TemporaryDirectory(prefix="jobqueue-tls-") as folder:
        paths: dict[str, Any] = {}
        files = [("certfile", tls.certificate_chain), ("keyfile", tls.private_key)]
        if tls.client_ca is not None:
            files.append(("ca_certs", tls.client_ca))
        for name, data in files:
            path = Path(folder) / f"{name}.pem"
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as file:
                file.write(data)
            paths[name] = path
        if tls.client_ca is not None:
            paths["cert_reqs"] = "required"
        yield paths


def _port_of(address: str) -> int:
    return int(address.rpartition(":")[2])


async def start_http_server(
    app: Any,
    *,
    address: str,
    tls: ServerTls | None = None,
    max_message_bytes: int,
    grace_s: float = 10.0,
    grace: float | None = None,
) -> HttpServer:
    """Serve ``app`` (ASGI) on ``address`` (``host:port``); port 0 binds a free port.

    ``grace_s`` is how long requests in flight may finish once the server
    stops (``grace`` is its deprecated name). Raises OSError when the address
    cannot be bound.
    """
    if grace is not None:
        _deprecated_grace("start_http_server")
        grace_s = grace
    with _tls_files(tls) as tls_options:
        config = h2corn.Config(
            bind=(address,),
            grpc=True,
            http1=True,
            access_log=False,
            lifespan="off",
            # The Connect app answers a message over the limit RESOURCE_EXHAUSTED in
            # each protocol's form; h2corn's own cap (HTTP 413, no such code) only
            # stops bodies far beyond it, such as a request twice the limit.
            max_request_body_size=2 * max_message_bytes + 64 * 1024,
            # Streams (WatchJob, ClaimJobs long polls, health Watch) share connections.
            max_concurrent_streams=1000,
            timeout_graceful_shutdown=max(grace_s, 0.001),
            **tls_options,
        )
        server = h2corn.Server(app, config)
        task = asyncio.create_task(server.serve(), name="jobqueue-http")
        try:
            await server.wait_started()
        except BaseException as error:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            if isinstance(error, OSError):
                raise OSError(f"cannot listen on {address}: {error}") from None
            raise
    port = _port_of(server.addresses[0])
    _log.info(
        "serving gRPC, Connect and gRPC-Web on %s (port %d, %s)",
        address,
        port,
        "plaintext: HTTP/1.1 and h2c" if tls is None else ("mutual TLS" if tls.mutual else "TLS"),
    )
    return HttpServer(port=port, _server=server, _task=task)


def _deprecated_grace(where: str) -> None:
    warnings.warn(
        f"{where}(grace=...) is deprecated: use grace_s=", DeprecationWarning, stacklevel=3
    )

"""gRPC unary calls answered straight from ASGI, without connectrpc's per-call machinery.

Why: a drained job and a single enqueue are mostly per-call cost, and for a
gRPC unary call connectrpc spends about 300 µs of the server's CPU (a no-op
EnqueueJob: 400-500 µs through connectrpc, 100-145 µs answered straight from
ASGI under h2corn, docs/benchmarks.md "Issue 17: the server path"). It runs a
unary call as a stream: a request generator, a response generator, a task
watching for a disconnect, a timeout scope, four sends. Here the common case
is one read, the servicer's call and three sends (headers, the message,
trailers), with the same servicers, status table, token check and metrics.

Only the plain case is taken: ``application/grpc`` or ``+proto``, no
compression, a caller the token check accepts, a well-formed single message.
Everything else goes to connectrpc, with the body read so far replayed, so
its answers (errors included) stay connectrpc's own. A claim is watched as
connectrpc watches every call: its caller leaving cancels it, so that its
leases are handed back. (h2corn also cancels a request whose stream is reset,
as the tests show with the watch removed; the watch keeps the rule whatever
the ASGI server.)
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
from connectrpc.errors import ConnectError
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from jobqueue.grpc import BearerTokenAuth

from ._endpoints import GRPC_CODES, connect_error

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]
Report = Callable[[str, grpc.StatusCode, float], None]

_CONTENT_TYPES = frozenset({b"application/grpc", b"application/grpc+proto"})
_TIMEOUT_UNITS_S = {b"H": 3600.0, b"M": 60.0, b"S": 1.0, b"m": 1e-3, b"u": 1e-6, b"n": 1e-9}
_OK_HEADERS = [(b"content-type", b"application/grpc+proto"), (b"grpc-encoding", b"identity")]


@dataclass(frozen=True, slots=True)
class FastMethod:
    """One unary method: how to decode its request, and the servicer's call.

    ``watched`` methods are cancelled when their caller leaves, as connectrpc
    and grpcio do: a claim whose caller left hands its leases back instead of
    answering nobody. The others run to their end (an enqueue or a settle
    that has begun completes: both are safe to repeat).
    """

    service: str
    request_class: type[Message]
    call: Callable[[Any, Any], Awaitable[Message]]
    watched: bool = False


class DeadlineContext:
    """What the servicers use of a call's context: the time left before the caller's deadline."""

    __slots__ = ("_deadline",)

    def __init__(self, deadline: float | None) -> None:
        self._deadline = deadline

    def time_remaining(self) -> float | None:
        """Seconds left before the caller's deadline, None without one (as grpc answers)."""
        if self._deadline is None:
            return None
        return self._deadline - asyncio.get_running_loop().time()

    def cancelled(self) -> bool:
        """True once the caller's deadline has passed."""
        remaining = self.time_remaining()
        return remaining is not None and remaining <= 0


class FastUnary:
    """Answers the plain gRPC unary calls of ``methods``; hands the rest to ``fallback``."""

    def __init__(
        self,
        methods: Mapping[str, FastMethod],
        *,
        fallback: App,
        auth: BearerTokenAuth | None,
        open_services: frozenset[str],
        report: Report | None,
        read_max_bytes: int,
    ) -> None:
        self._methods = methods
        self._fallback = fallback
        self._auth = auth
        self._open = open_services
        self._report = report
        self._read_max_bytes = read_max_bytes

    def __contains__(self, path: str) -> bool:
        return path in self._methods

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = self._methods[scope["path"]]
        started = time.perf_counter()
        deadline = self._plain(scope, method)
        if deadline is False:
            await self._fallback(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:  # ends with the body's last chunk or the caller's disconnect
            message = await receive()
            if message["type"] != "http.request":
                return  # the caller left before its request arrived: nobody to answer
            # The body is bounded by h2corn (max_request_body_size), so it is read whole.
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        request = self._decode(body, method)
        if request is None:
            await self._fallback(scope, _replay(body, receive), send)
            return
        left = _Left()
        try:
            if method.watched:
                response = await _watched(method, request, deadline, receive, left)
            elif deadline is None:
                response = await method.call(request, DeadlineContext(None))
            else:
                async with asyncio.timeout_at(deadline):
                    response = await method.call(request, DeadlineContext(deadline))
            code, details = grpc.StatusCode.OK, ""
        except ConnectError as error:
            code = GRPC_CODES.get(error.code, grpc.StatusCode.UNKNOWN)
            details = error.message
        except TimeoutError:
            code, details = grpc.StatusCode.DEADLINE_EXCEEDED, "Request timed out"
            if left.now:
                code, details = grpc.StatusCode.CANCELLED, "Client disconnected"
        if self._report is not None:
            self._report(scope["path"], code, time.perf_counter() - started)
        if left.now:
            return  # nobody to answer
        if code is grpc.StatusCode.OK:
            data = response.SerializeToString()
            start = {"type": "http.response.start", "status": 200, "trailers": True}
            await send({**start, "headers": list(_OK_HEADERS)})
            envelope = b"\x00" + len(data).to_bytes(4, "big") + data
            await send({"type": "http.response.body", "body": envelope, "more_body": False})
            await send({"type": "http.response.trailers", "headers": [(b"grpc-status", b"0")]})
            return
        await _trailers_only(send, code, details)

    def _plain(self, scope: Scope, method: FastMethod) -> float | bool | None:
        """The call's deadline (loop time, None without one), or False when it is not plain."""
        if scope["method"] != "POST" or "http.response.trailers" not in scope.get("extensions", {}):
            return False
        content_type = authorization = timeout = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value
            elif name == b"authorization" and authorization is None:
                authorization = value
            elif name == b"grpc-timeout":
                timeout = value
            elif name == b"grpc-encoding" and value != b"identity":
                return False
        if content_type not in _CONTENT_TYPES:
            return False
        auth = self._auth
        if (
            auth is not None
            and method.service not in self._open
            and not auth.accepts(authorization)
        ):
            return False  # refused by connectrpc's interceptor, counted by its observer
        if timeout is None:
            return None
        unit = _TIMEOUT_UNITS_S.get(timeout[-1:])
        digits = timeout[:-1]
        if unit is None or not digits.isdigit() or len(digits) > 8:
            return False
        return asyncio.get_running_loop().time() + int(digits) * unit

    def _decode(self, body: bytes, method: FastMethod) -> Message | None:
        """The one uncompressed message the body holds, or None for anything else."""
        if len(body) < 5 or body[0] != 0:
            return None
        length = int.from_bytes(body[1:5], "big")
        if length != len(body) - 5 or length > self._read_max_bytes:
            return None
        try:
            return method.request_class.FromString(body[5:])
        except Exception:  # DecodeError, or whatever the runtime raises: connectrpc answers it
            return None


def fast_methods(
    descriptor: ServiceDescriptor,
    servicer: object,
    *,
    watched: frozenset[str] = frozenset(),
) -> dict[str, FastMethod]:
    """``/package.Service/Method`` -> ``FastMethod`` for every unary method of ``descriptor``.

    Errors go through the one status table (``connect_error``), as on every
    other path. ``watched`` names the methods a leaving caller cancels.
    """
    methods: dict[str, FastMethod] = {}
    for method in descriptor.methods:
        if method.client_streaming or method.server_streaming:
            continue
        implementation = getattr(servicer, method.name)
        methods[f"/{descriptor.full_name}/{method.name}"] = FastMethod(
            service=descriptor.full_name,
            request_class=GetMessageClass(method.input_type),
            call=_mapped(implementation),
            watched=method.name in watched,
        )
    return methods


def _mapped(
    implementation: Callable[[Any, Any], Awaitable[Message]],
) -> Callable[[Any, Any], Awaitable[Message]]:
    async def call(request: Any, context: Any) -> Message:
        try:
            return await implementation(request, context)
        except ConnectError:
            raise
        except Exception as error:
            raise connect_error(error) from None

    return call


class _Left:
    """Whether the caller left (its stream was reset) while a watched call ran."""

    __slots__ = ("now",)

    def __init__(self) -> None:
        self.now = False


async def _watched(
    method: FastMethod, request: Message, deadline: float | None, receive: Receive, left: _Left
) -> Message:
    """The call, cancelled at its deadline or as soon as its caller leaves.

    As connectrpc does: the watch starts only once the call suspends (one that
    completes at once never pays for a task), reads ``receive`` until the
    disconnect, and then moves the call's timeout to now, which cancels it
    where it waits; TimeoutError says which one happened through ``left``.
    """
    loop = asyncio.get_running_loop()
    watch: asyncio.Task[None] | None = None
    async with asyncio.timeout_at(deadline) as timeout:

        async def watching() -> None:
            with contextlib.suppress(Exception):
                while (await receive())["type"] != "http.disconnect":
                    pass
                left.now = True
                if not timeout.expired():
                    timeout.reschedule(loop.time())

        def start() -> None:
            nonlocal watch
            watch = loop.create_task(watching())

        handle = loop.call_soon(start)
        try:
            return await method.call(request, DeadlineContext(deadline))
        finally:
            handle.cancel()
            if watch is not None:
                watch.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watch


def _replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` that first hands over the body already read, whole."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> dict[str, Any]:
        if pending:
            return pending.pop()
        return await receive()

    return replayed


async def _trailers_only(send: Send, code: grpc.StatusCode, details: str) -> None:
    """A failed call's status in the headers of an empty response, as connectrpc writes it."""
    headers = [(b"grpc-status", str(code.value[0]).encode())]
    if details:
        headers.append((b"grpc-message", urllib.parse.quote(details, safe="").encode()))
    headers.append((b"content-type", b"application/grpc"))
    await send(
        {"type": "http.response.start", "status": 200, "headers": headers, "trailers": False}
    )
    await send({"type": "http.response.body", "body": b"", "more_body": False})

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
compression, a caller the token check accepts, a well-formed single message
within the size limit (checked from its 5-byte prefix, so an oversized one is
never held). Everything else goes to connectrpc, with the body read so far
replayed and the rest streamed, so its answers (errors included) stay
connectrpc's own. What connectrpc does around a call, this does too: the
deadline runs from the start (the body's arrival included; an expired one
is answered without a call), a caller that leaves or a cancelled request is
counted CANCELLED, and a claim is watched as connectrpc watches every call:
its caller leaving cancels it, so that its leases are handed back. (h2corn
also cancels a request whose stream is reset; the watch keeps the rule
whatever the ASGI server.)
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
from connectrpc.code import Code
from connectrpc.errors import ConnectError
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from jobqueue.grpc import BearerTokenAuth

from ._endpoints import GRPC_CODES, connect_error
from ._fast_watch import DeadlineContext, HandBack, Left, hold, watched

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

    ``call`` answers the serialized response. ``watched`` methods are
    cancelled when their caller leaves, as connectrpc cancels every call: a
    claim whose caller left hands its leases back instead of answering
    nobody. The others are not watched here, but h2corn cancels a request's
    task when its stream is reset, so an enqueue or a settle may still be cut
    short where it waits (as through connectrpc; both are safe to repeat).
    ``hand_back`` undoes an answer that will reach nobody (a claim's leases,
    when its caller left or its deadline passed just as it answered).
    """

    service: str
    request_class: type[Message]
    call: Callable[[Any, Any], Awaitable[bytes]]
    watched: bool = False
    hand_back: HandBack | None = None


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
        left = Left()
        data: bytes | None = None
        # The deadline covers the whole call from here, the body's arrival
        # included (as connectrpc's does); its status is written without one.
        # Without a deadline only a watched call needs the scope (the watch
        # moves it): the others save its cost (~3 µs).
        try:
            if deadline is None and not method.watched:
                outcome = await self._run(method, None, receive, left, None)
            else:
                async with asyncio.timeout_at(deadline) as deadline_scope:
                    outcome = await self._run(method, deadline, receive, left, deadline_scope)
        except ConnectError as error:
            code = GRPC_CODES.get(error.code, grpc.StatusCode.UNKNOWN)
            details = error.message
        except TimeoutError:
            code, details = grpc.StatusCode.DEADLINE_EXCEEDED, "Request timed out"
        except asyncio.CancelledError:
            # The server cancelled the request (its stream was reset, or it is
            # stopping), or the servicer raised it: CANCELLED, as connectrpc
            # answers, counted too; the first is re-raised once answered.
            self._observe(scope, grpc.StatusCode.CANCELLED, started)
            task = asyncio.current_task()
            if task is None or not task.cancelling():
                await _trailers_only(send, grpc.StatusCode.CANCELLED, "Request was cancelled")
                return
            with contextlib.suppress(Exception):
                await _trailers_only(send, grpc.StatusCode.CANCELLED, "Request was cancelled")
            raise
        else:
            if not isinstance(outcome, bytes):
                await self._fallback(scope, outcome, send)  # connectrpc counts and answers it
                return
            data = outcome
            code, details = grpc.StatusCode.OK, ""
        if left.now:
            code, details = grpc.StatusCode.CANCELLED, "Client disconnected"
            if data is not None and method.hand_back is not None:
                hold(asyncio.ensure_future(method.hand_back(data)))
        self._observe(scope, code, started)
        if left.now:
            return  # nobody to answer
        if data is not None:
            start = {"type": "http.response.start", "status": 200, "trailers": True}
            await send({**start, "headers": list(_OK_HEADERS)})
            envelope = b"\x00" + len(data).to_bytes(4, "big") + data
            await send({"type": "http.response.body", "body": envelope, "more_body": False})
            await send({"type": "http.response.trailers", "headers": [(b"grpc-status", b"0")]})
            return
        await _trailers_only(send, code, details)

    async def _run(
        self,
        method: FastMethod,
        deadline: float | None,
        receive: Receive,
        left: Left,
        deadline_scope: asyncio.Timeout | None,
    ) -> bytes | Receive:
        """The serialized answer, or what connectrpc must be handed to answer the call itself."""
        request = await self._read(receive, method, left)
        if not isinstance(request, Message):
            return request
        if deadline is not None and deadline <= asyncio.get_running_loop().time():
            # Already past (grpc-timeout 1n, 0S): no call, whatever it would cost.
            raise TimeoutError
        if deadline_scope is not None and method.watched:
            context = DeadlineContext(deadline, left)
            return await watched(
                method.call, method.hand_back, request, context, receive, left, deadline_scope
            )
        return await method.call(request, DeadlineContext(deadline))

    def _observe(self, scope: Scope, code: grpc.StatusCode, started: float) -> None:
        if self._report is not None:
            self._report(scope["path"], code, time.perf_counter() - started)

    async def _read(self, receive: Receive, method: FastMethod, left: Left) -> Message | Receive:
        """The request, or what connectrpc must be handed to answer the call itself.

        The 5-byte prefix is checked as soon as it arrives: a message over the
        limit, compressed, or followed by more bytes than it declares is handed
        over at once (connectrpc refuses it from its prefix), so no more than
        the limit is ever held. A caller that leaves first raises CANCELLED,
        as connectrpc does.
        """
        message = await receive()
        if message["type"] != "http.request":
            raise _disconnected(left)
        body: bytes = message.get("body", b"")
        more: bool = message.get("more_body", False)
        if more:
            chunks = [body]
            size = len(body)
            while more:
                if size >= 5 and not self._fits(chunks, size):
                    return _replay(chunks, True, receive)
                message = await receive()
                if message["type"] != "http.request":
                    raise _disconnected(left)
                body = message.get("body", b"")
                chunks.append(body)
                size += len(body)
                more = message.get("more_body", False)
            body = b"".join(chunks)
        request = self._decode(body, method)
        return _replay([body], False, receive) if request is None else request

    def _fits(self, chunks: list[bytes], size: int) -> bool:
        """Whether a body whose first ``size`` bytes are ``chunks`` may still be a plain message."""
        head = chunks[0] if len(chunks[0]) >= 5 else b"".join(chunks)
        length = int.from_bytes(head[1:5], "big")
        return head[0] == 0 and length <= self._read_max_bytes and size <= length + 5

    def _plain(self, scope: Scope, method: FastMethod) -> float | bool | None:
        """The call's deadline (loop time, None without one), or False when it is not plain.

        Of a repeated header the first counts, as in connectrpc.
        """
        if scope["method"] != "POST" or "http.response.trailers" not in scope.get("extensions", {}):
            return False
        content_type = authorization = timeout = encoding = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                if content_type is None:
                    content_type = value
            elif name == b"authorization":
                if authorization is None:
                    authorization = value
            elif name == b"grpc-timeout":
                if timeout is None:
                    timeout = value
            elif name == b"grpc-encoding" and encoding is None:
                encoding = value
        if content_type not in _CONTENT_TYPES or encoding not in (None, b"identity"):
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
    hand_backs: Mapping[str, HandBack] | None = None,
) -> dict[str, FastMethod]:
    """``/package.Service/Method`` -> ``FastMethod`` for every unary method of ``descriptor``.

    Errors go through the one status table (``connect_error``), as on every
    other path. ``watched`` names the methods a leaving caller cancels,
    ``hand_backs`` how to undo an answer of one that reaches nobody.
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
            hand_back=(hand_backs or {}).get(method.name),
        )
    return methods


def _mapped(
    implementation: Callable[[Any, Any], Awaitable[Message]],
) -> Callable[[Any, Any], Awaitable[bytes]]:
    async def call(request: Any, context: Any) -> bytes:
        try:
            # Serialized here, so that an answer that is no message (None)
            # fails as the servicer's error: INTERNAL, logged, and counted.
            return (await implementation(request, context)).SerializeToString()
        except ConnectError:
            raise
        except Exception as error:
            raise connect_error(error) from None

    return call


def _disconnected(left: Left) -> ConnectError:
    """The caller left before its request arrived: CANCELLED, as connectrpc counts it."""
    left.now = True
    return ConnectError(Code.CANCELED, "Client disconnected before request completion")


def _replay(chunks: list[bytes], more: bool, receive: Receive) -> Receive:
    """``receive`` that first hands over the body read so far, then the rest as it comes."""
    pending = [{"type": "http.request", "body": b"".join(chunks), "more_body": more}]

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

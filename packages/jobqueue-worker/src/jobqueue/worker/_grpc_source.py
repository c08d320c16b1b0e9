"""The server path: a JobSource over the server's ``WorkerService``.

gRPC failures are translated here into the SDK's own errors, so nobody who
uses the worker has to import ``grpc``. Messages are encoded by ``_wire``, not
by the generated protobuf classes: see there why.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import grpc

from jobqueue.domain import Lease, LeaseState, Outcome

from . import _wire
from ._errors import SourceError, SourceUnavailable

_T = TypeVar("_T")
_METHOD_PREFIX = "/mpataki.jobqueue.v1.WorkerService/"
_UNAVAILABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)
_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
"""As large as the server's default: a claim of many big payloads must fit."""


class GrpcSource:
    """Takes jobs through a jobqueue server (``JOBQUEUE_SERVER``, ``host:port``).

    Args:
        target: the server's address, ``host:port``.
        timeout_s: deadline of settle and renew calls; a claim gets its wait on top.
        credentials: TLS credentials; None means a plaintext channel.
        metadata: sent with every call, e.g. ``[("authorization", "Bearer ...")]``.
        channel: an existing channel to use instead (it is not closed by ``close``).

    The server sweeps expired leases itself, so ``requeue_expired`` does nothing
    here. No connection is made before the first call.
    """

    def __init__(
        self,
        target: str,
        *,
        timeout_s: float = 10.0,
        credentials: grpc.ChannelCredentials | None = None,
        metadata: Sequence[tuple[str, str]] = (),
        channel: grpc.aio.Channel | None = None,
    ) -> None:
        self._target = target
        self._timeout_s = timeout_s
        self._credentials = credentials
        self._metadata = tuple(metadata) or None
        self._channel = channel
        self._owns_channel = channel is None
        self._methods: dict[str, grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]] = {}

    @property
    def target(self) -> str:
        return self._target

    def _method(self, name: str) -> grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]:
        """A WorkerService method taking and returning encoded messages (bytes)."""
        method = self._methods.get(name)
        if method is not None:
            return method
        # A grpc.aio channel belongs to the event loop it is created on, so it
        # is created on first use, inside the worker's loop.
        if self._channel is None:
            options = [
                ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
                ("grpc.keepalive_time_ms", 20_000),
                ("grpc.keepalive_permit_without_calls", 1),
            ]
            if self._credentials is None:
                self._channel = grpc.aio.insecure_channel(self._target, options=options)
            else:
                self._channel = grpc.aio.secure_channel(
                    self._target, self._credentials, options=options
                )
        # Registered, as generated stubs do it: grpc then skips a lookup per call.
        method = self._channel.unary_unary(  # type: ignore[call-arg]
            _METHOD_PREFIX + name, None, None, _registered_method=True
        )
        self._methods[name] = method
        return method

    async def _call(
        self, name: str, request: bytes, timeout_s: float, decode: Callable[[bytes], _T]
    ) -> _T:
        try:
            response: bytes = await self._method(name)(
                request, timeout=timeout_s, metadata=self._metadata
            )
        except grpc.aio.AioRpcError as error:
            raise _translate(error) from None
        try:
            return decode(response)
        except _wire.WireError as error:
            raise SourceError("INTERNAL", f"malformed {name} response: {error}") from None

    async def claim(
        self, types: Sequence[str], *, limit: int, lease_ms: int, wait_ms: int
    ) -> list[Lease]:
        request = _wire.encode_claim_request(types, limit=limit, lease_ms=lease_ms, wait_ms=wait_ms)
        timeout_s = wait_ms / 1000 + self._timeout_s
        return await self._call("ClaimJobs", request, timeout_s, _wire.decode_claim_response)

    async def settle(self, outcomes: Sequence[Outcome]) -> list[bool]:
        if not outcomes:
            return []
        request = _wire.encode_settle_request(outcomes)
        return await self._call(
            "SettleJobs", request, self._timeout_s, _wire.decode_settle_response
        )

    async def renew(self, leases: Sequence[tuple[str, str]], *, lease_ms: int) -> list[LeaseState]:
        if not leases:
            return []
        request = _wire.encode_renew_request(leases, lease_ms=lease_ms)
        return await self._call(
            "RenewLeases", request, self._timeout_s, _wire.decode_renew_response
        )

    async def requeue_expired(self, *, limit: int) -> int:
        return 0

    async def close(self) -> None:
        if self._owns_channel and self._channel is not None:
            await self._channel.close(None)
        self._channel = None if self._owns_channel else self._channel
        self._methods.clear()


def _translate(error: grpc.aio.AioRpcError) -> Exception:
    code = error.code()
    details = error.details() or code.name
    if code in _UNAVAILABLE:
        return SourceUnavailable(f"{code.name}: {details}")
    return SourceError(code.name, details)

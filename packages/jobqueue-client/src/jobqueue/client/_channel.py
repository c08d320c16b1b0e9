"""Connection settings shared by both clients: target, TLS, auth metadata, deadlines."""

from __future__ import annotations

import os
from dataclasses import dataclass

import grpc

from ._retry import RetryPolicy

DEFAULT_TARGET = "localhost:8080"
TARGET_ENV = "JOBQUEUE_SERVER"
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_PORT = 8080
"""The port of a target given without one: the server's, not gRPC's own default of 443."""
_HTTPS_PORT = 443

# gRPC's own reconnect backoff starts at 1 s and grows to 120 s; a client whose
# server restarts should notice within our retry budget, so it starts lower and
# stays bounded.
_CHANNEL_OPTIONS: list[tuple[str, int]] = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2_000),
    # ListJobs pages may be large; the server bounds them by its own limit.
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
]

PathLike = str | os.PathLike[str]


@dataclass(frozen=True, slots=True)
class Connection:
    """Everything needed to open a channel and to make calls on it."""

    target: str
    timeout_s: float
    retry: RetryPolicy
    credentials: grpc.ChannelCredentials | None
    metadata: tuple[tuple[str, str], ...]
    options: tuple[tuple[str, int | str], ...]

    def sync_channel(self) -> grpc.Channel:
        if self.credentials is None:
            return grpc.insecure_channel(self.target, options=self.options)
        return grpc.secure_channel(self.target, self.credentials, options=self.options)

    def aio_channel(self) -> grpc.aio.Channel:
        if self.credentials is None:
            return grpc.aio.insecure_channel(self.target, options=self.options)
        return grpc.aio.secure_channel(self.target, self.credentials, options=self.options)


def connection(
    *,
    target: str | None,
    timeout: float,
    retries: int | RetryPolicy,
    tls: bool,
    ca_cert: PathLike | None,
    client_cert: PathLike | None,
    client_key: PathLike | None,
    tls_server_name: str | None,
    auth_token: str | None,
) -> Connection:
    """Check the constructor options once and turn them into a ``Connection``."""
    if timeout <= 0:
        raise ValueError("timeout must be positive")
    if (client_cert is None) != (client_key is None):
        raise ValueError("client_cert and client_key go together")
    retry = retries if isinstance(retries, RetryPolicy) else RetryPolicy(max_retries=retries)
    address, scheme_tls = split_target(target or os.environ.get(TARGET_ENV) or DEFAULT_TARGET)
    wants_tls = tls or ca_cert is not None or client_cert is not None
    if scheme_tls is False and wants_tls:
        raise ValueError("an http:// target means plaintext: use https:// for TLS")
    credentials: grpc.ChannelCredentials | None = None
    if wants_tls or scheme_tls:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=_read(ca_cert),
            private_key=_read(client_key),
            certificate_chain=_read(client_cert),
        )
    options: list[tuple[str, int | str]] = list(_CHANNEL_OPTIONS)
    if tls_server_name is not None:
        options.append(("grpc.ssl_target_name_override", tls_server_name))
    metadata = (("authorization", f"Bearer {auth_token}"),) if auth_token else ()
    return Connection(
        target=address,
        timeout_s=timeout,
        retry=retry,
        credentials=credentials,
        metadata=metadata,
        options=tuple(options),
    )


def split_target(target: str) -> tuple[str, bool | None]:
    """``host:port`` to dial, and whether the target's scheme asked for TLS (None: no scheme).

    ``host`` alone means the server's port 8080, where gRPC would dial 443;
    ``http://host:port`` is plaintext and ``https://host[:port]`` TLS (443 by
    default), so a URL pasted from a browser or a config file works as it
    reads. gRPC's own forms (``dns:///``, ``unix:``, ``ipv4:`` ...) pass unchanged.
    """
    scheme_tls: bool | None = None
    rest = target.strip()
    for scheme, tls in (("http://", False), ("https://", True)):
        if rest.lower().startswith(scheme):
            scheme_tls, rest = tls, rest[len(scheme) :].rstrip("/")
            if "/" in rest:
                raise ValueError(f"{target!r}: a server address has no path")
    # An IPv6 literal is bracketed: its port, if any, follows the "]".
    has_port = ":" in (rest.rpartition("]")[2] if rest.startswith("[") else rest)
    if has_port:
        return rest, scheme_tls  # host:port, or one of gRPC's own schemes
    default = _HTTPS_PORT if scheme_tls else DEFAULT_PORT
    return f"{rest}:{default}", scheme_tls


def _read(path: PathLike | None) -> bytes | None:
    # open(), not pathlib: the worker SDK's GrpcSource imports this module (issue 17's RSS).
    if path is None:
        return None
    with open(path, "rb") as file:
        return file.read()

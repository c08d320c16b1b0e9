"""The job source a worker builds for itself from a Redis URL or a server address.

Built only when the worker starts, so nothing connects before then and the
``jobqueue worker`` command may still replace it; and imported lazily, so a
worker on the direct Redis path never loads grpc, and one on the server path
never loads the Redis adapter.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypedDict

from ._source import JobSource, StoreSource

PathLike = str | os.PathLike[str]


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """How to build a worker's source, and how to name it in the log (no secrets)."""

    label: str
    build: Callable[[], JobSource]


class ServerOptions(TypedDict, total=False):
    """How a worker reaches a server, besides its address: the client SDK's options.

    The same names and meanings as ``jobqueue.client.JobClient``'s, read by
    the same code (``jobqueue.client``'s connection): ``auth_token`` (sent as
    ``authorization: Bearer <token>``), ``tls`` (the system's roots),
    ``ca_cert`` (PEM roots to trust, implies TLS), ``client_cert`` and
    ``client_key`` (mutual TLS) and ``tls_server_name`` (the name in the
    server's certificate).
    """

    auth_token: str | None
    tls: bool
    ca_cert: PathLike | None
    client_cert: PathLike | None
    client_key: PathLike | None
    tls_server_name: str | None


def uses_tls(options: ServerOptions) -> bool:
    return bool(options.get("tls") or options.get("ca_cert") or options.get("client_cert"))


def given(options: ServerOptions) -> bool:
    """Whether any option is set (an option with no server to apply to is a mistake)."""
    return any(value not in (None, False) for value in options.values())


def given_source(source: JobSource) -> SourceSpec:
    return SourceSpec(_describe(source), lambda: source)


def redis_source(url: str, *, key_prefix: str | None = None) -> SourceSpec:
    """A StoreSource on a RedisJobStore it owns: the store is closed when the worker stops.

    Any URL ``jobqueue.redis`` reads: ``redis://``, ``rediss://`` (TLS),
    ``redis+sentinel://`` and ``redis+cluster://``. The settings are checked now.
    """
    from jobqueue.redis import RedisJobStore, RedisStoreSettings

    settings = (
        RedisStoreSettings(url=url)
        if key_prefix is None
        else RedisStoreSettings(url=url, key_prefix=key_prefix)
    )
    label = f"redis {redact(url)} (key prefix {settings.key_prefix!r})"
    return SourceSpec(label, lambda: StoreSource(RedisJobStore(settings), close_store=True))


def server_source(target: str, options: ServerOptions) -> SourceSpec:
    """A GrpcSource on a channel it owns: closed when the worker stops."""

    def build() -> JobSource:
        from ._grpc_source import GrpcSource

        return GrpcSource(target, **options)

    flags = (("TLS", uses_tls(options)), ("token", options.get("auth_token")))
    extras = [name for name, on in flags if on]
    label = f"server {target}" + (f" ({', '.join(extras)})" if extras else "")
    return SourceSpec(label, build)


def redact(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``: fit for a log line."""
    import urllib.parse  # here: a worker through the server never parses a Redis URL

    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def _describe(source: JobSource) -> str:
    target = getattr(source, "target", None)
    if isinstance(target, str):
        return f"server {target}"
    if isinstance(source, StoreSource):
        return f"store {type(source.store).__name__}"
    return type(source).__name__


def source_spec(
    source: JobSource | None,
    redis_url: str | None,
    key_prefix: str | None,
    server: str | None,
    options: ServerOptions,
) -> SourceSpec | None:
    """The Worker constructor's choice of source, checked; None when it names none."""
    chosen = [
        name
        for name, value in (("source", source), ("redis_url", redis_url), ("server", server))
        if value is not None
    ]
    if len(chosen) > 1:
        raise ValueError(f"give one of source, redis_url and server, not {' and '.join(chosen)}")
    if key_prefix is not None and redis_url is None:
        raise ValueError("key_prefix goes with redis_url")
    if given(options) and server is None:
        raise ValueError("auth_token and the TLS options go with server")
    if source is not None:
        return given_source(source)
    if redis_url is not None:
        return redis_source(redis_url, key_prefix=key_prefix)
    if server is not None:
        return server_source(server, options)
    return None

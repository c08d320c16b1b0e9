"""The job source a worker builds for itself from a Redis URL or a server address.

Built only when the worker starts, so nothing connects before then and the
``jobqueue worker`` command may still replace it; and imported lazily, so a
worker on the direct Redis path never loads grpc, and one on the server path
never loads the Redis adapter.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

from ._source import JobSource, StoreSource

PathLike = str | os.PathLike[str]


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """How to build a worker's source, and how to name it in the log (no secrets)."""

    label: str
    build: Callable[[], JobSource]


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerOptions:
    """How to reach a jobqueue server: the client SDK's connection options, no ``grpc``."""

    auth_token: str | None = None
    tls: bool = False
    ca_cert: PathLike | None = None
    client_cert: PathLike | None = None
    client_key: PathLike | None = None
    tls_server_name: str | None = None

    @property
    def given(self) -> bool:
        return any(
            value not in (None, False)
            for value in (
                self.auth_token,
                self.tls,
                self.ca_cert,
                self.client_cert,
                self.client_key,
                self.tls_server_name,
            )
        )

    @property
    def uses_tls(self) -> bool:
        return self.tls or self.ca_cert is not None or self.client_cert is not None


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

        return GrpcSource(
            target,
            auth_token=options.auth_token,
            tls=options.tls,
            ca_cert=options.ca_cert,
            client_cert=options.client_cert,
            client_key=options.client_key,
            tls_server_name=options.tls_server_name,
        )

    extras = [name for name, on in (("TLS", options.uses_tls), ("token", options.auth_token)) if on]
    label = f"server {target}" + (f" ({', '.join(extras)})" if extras else "")
    return SourceSpec(label, build)


def redact(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``: fit for a log line."""
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

"""The server's settings: environment variables (``JOBQUEUE_*``), overridden by CLI flags."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ._cors import parse_origins

MIB = 1024 * 1024

StoreKind = Literal["memory", "redis"]
EventLoop = Literal["auto", "uvloop", "asyncio"]
Wire = Literal["http", "grpcio"]


class ServerSettings(BaseSettings):
    """Everything an operator may set. Each field reads ``JOBQUEUE_<NAME>``.

    The store is Redis when ``JOBQUEUE_REDIS_URL`` is set — or the seed's
    ``REDIS_ADDR`` (``host:port``), kept so the Go original's deployments work
    unchanged — and the embedded in-memory store otherwise.
    """

    model_config = SettingsConfigDict(env_prefix="JOBQUEUE_", extra="ignore")

    host: str = Field(default="0.0.0.0", description="Address to bind (0.0.0.0: all IPv4).")
    port: int = Field(
        default=8080,
        ge=0,
        le=65535,
        description="The API's port (gRPC, Connect, gRPC-Web, /healthz, /metrics); 0: a free one.",
    )
    wire: Wire = Field(
        default="http",
        description=(
            "http: gRPC, Connect and gRPC-Web on one port (connectrpc on h2corn); "
            "grpcio: gRPC alone on grpcio's server, the previous transport."
        ),
    )
    redis_url: str | None = Field(
        default=None,
        description=(
            "redis://, rediss://, redis+sentinel://host:26379,host:26380/<service>/<db> "
            "or redis+cluster://host:port[,host:port...] (with JOBQUEUE_REDIS_SHARDS) URL; "
            "unset: the in-memory store."
        ),
    )
    redis_addr: str | None = Field(
        default=None,
        validation_alias=AliasChoices("JOBQUEUE_REDIS_ADDR", "REDIS_ADDR"),
        description="The seed's host:port form, used when redis_url is unset.",
    )
    key_prefix: str = Field(
        default="jq",
        pattern=r"^[A-Za-z0-9_.:-]{1,64}$",
        description="Namespace of every Redis key.",
    )
    redis_min_replicas: int = Field(
        default=0,
        ge=0,
        description=(
            "Acknowledge enqueues, settles and cancels only once this many replicas hold "
            "them (WAIT); fewer within the timeout: UNAVAILABLE. 0: the primary alone."
        ),
    )
    redis_replica_timeout_ms: int = Field(
        default=1_000, gt=0, description="How long a write waits for JOBQUEUE_REDIS_MIN_REPLICAS."
    )
    retention_ms: int = Field(
        default=86_400_000,
        gt=0,
        description=(
            "How long finished jobs stay readable, in ms. On Redis it is stored there and "
            "applies to every server and direct worker of the prefix. "
            "JOBQUEUE_RETENTION_SECONDS (in seconds) still works."
        ),
    )
    max_finished_per_type: int = Field(
        default=100_000,
        gt=0,
        description=(
            "Most finished jobs kept per type and status (oldest forgotten first), besides "
            "the retention; on Redis shared like the retention."
        ),
    )
    redis_shards: int | None = Field(
        default=None,
        ge=1,
        le=65_535,
        description=(
            "Virtual shards of the Redis keyspace, by job type: 1 keeps one hash tag (a single "
            "Redis or Sentinel); more spread types over a Redis Cluster's masters. Unset: the "
            "number recorded in Redis by the prefix's first writer (1 when none); a number "
            "that disagrees with the record stops the store (jobqueue-server migrate moves a "
            "one-shard queue into shards)."
        ),
    )
    max_payload_bytes: int = Field(
        default=MIB, gt=0, description="Largest payload (and result) of one job."
    )
    max_message_bytes: int = Field(
        default=64 * MIB, ge=MIB, description="Largest gRPC message, bounding batches and pages."
    )
    shutdown_grace_s: float = Field(
        default=10.0,
        ge=0,
        description=(
            "How long calls in flight may finish on SIGTERM, in seconds. "
            "JOBQUEUE_SHUTDOWN_GRACE_SECONDS still works."
        ),
    )
    sweep_interval_s: float = Field(
        default=1.0,
        gt=0,
        description=(
            "How often expired leases are handed back to the queue, in seconds. "
            "JOBQUEUE_SWEEP_INTERVAL_SECONDS still works."
        ),
    )
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR.")
    event_loop: EventLoop = Field(
        default="auto",
        description="uvloop, asyncio, or auto: uvloop where it is installed (it is by default).",
    )
    metrics_port: int | None = Field(
        default=None, ge=0, le=65535, description="Serve Prometheus metrics on this port."
    )
    auth_token: SecretStr | None = Field(
        default=None,
        description=(
            "Bearer token every RPC but health requires; several, comma-separated, "
            "are all accepted (rotation). Unset: no authentication."
        ),
    )
    auth_token_file: Path | None = Field(
        default=None,
        description="File holding the token(s), one per line or comma-separated; read at start.",
    )
    tls_cert_file: Path | None = Field(
        default=None, description="PEM certificate chain: serve gRPC over TLS (with the key)."
    )
    tls_key_file: Path | None = Field(
        default=None, description="PEM private key of the TLS certificate."
    )
    tls_client_ca_file: Path | None = Field(
        default=None,
        description="PEM CA bundle: require client certificates signed by it (mutual TLS).",
    )
    cors_origins: str = Field(
        default="",
        description=(
            "Origins whose browser apps may call the API (Connect, gRPC-Web), comma-separated "
            "(https://app.example.com,http://localhost:3000), or * for any; empty: none."
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        """Accept the names from before the unit convention (``_ms`` / ``_s``).

        An old keyword (``retention_seconds=``) warns; an old environment
        variable (``JOBQUEUE_RETENTION_SECONDS``) keeps working silently, so
        deployments need no change. A new name, wherever it is set, wins over
        an old environment variable.
        """
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for old, (new, scale) in _RENAMED.items():
            if old in data:
                warnings.warn(
                    f"ServerSettings({old}=...) is deprecated: use {new}= ({_UNITS[new]})",
                    DeprecationWarning,
                    stacklevel=2,
                )
                data[new] = _scaled(data.pop(old), scale)
                continue
            env = os.environ.get(f"JOBQUEUE_{old.upper()}")
            if env is not None and new not in data:
                data[new] = _scaled(env, scale)
        return data

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if not isinstance(logging.getLevelName(level), int):
            raise ValueError(f"unknown log level {value!r}")
        return level

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: str) -> str:
        parse_origins(value)  # its ValueError names the entry that is no origin
        return value

    @property
    def cors_origin_list(self) -> tuple[str, ...]:
        return parse_origins(self.cors_origins)

    @model_validator(mode="after")
    def _consistent_security(self) -> Self:
        if self.auth_token is not None and self.auth_token_file is not None:
            raise ValueError("set JOBQUEUE_AUTH_TOKEN or JOBQUEUE_AUTH_TOKEN_FILE, not both")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("JOBQUEUE_TLS_CERT_FILE and JOBQUEUE_TLS_KEY_FILE go together")
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise ValueError(
                "JOBQUEUE_TLS_CLIENT_CA_FILE needs JOBQUEUE_TLS_CERT_FILE and JOBQUEUE_TLS_KEY_FILE"
            )
        return self

    @property
    def store_kind(self) -> StoreKind:
        return "redis" if self.effective_redis_url else "memory"

    @property
    def effective_redis_url(self) -> str | None:
        if self.redis_url:
            return self.redis_url
        if self.redis_addr:
            return f"redis://{self.redis_addr}/0"
        return None

    @property
    def address(self) -> str:
        """``host:port`` as gRPC wants it, with an IPv6 host in brackets."""
        host = self.host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"{host}:{self.port}"

    @property
    def retention_seconds(self) -> int:
        """Deprecated: ``retention_ms`` // 1000."""
        _deprecated("retention_seconds", "retention_ms")
        return self.retention_ms // 1000

    @property
    def shutdown_grace_seconds(self) -> float:
        """Deprecated: ``shutdown_grace_s``."""
        _deprecated("shutdown_grace_seconds", "shutdown_grace_s")
        return self.shutdown_grace_s

    @property
    def sweep_interval_seconds(self) -> float:
        """Deprecated: ``sweep_interval_s``."""
        _deprecated("sweep_interval_seconds", "sweep_interval_s")
        return self.sweep_interval_s


_RENAMED: dict[str, tuple[str, int]] = {
    "retention_seconds": ("retention_ms", 1000),
    "shutdown_grace_seconds": ("shutdown_grace_s", 1),
    "sweep_interval_seconds": ("sweep_interval_s", 1),
}
_UNITS = {"retention_ms": "ms", "shutdown_grace_s": "seconds", "sweep_interval_s": "seconds"}


def _scaled(value: Any, scale: int) -> Any:
    """An old value in the new unit; what is not a number is left for validation to refuse."""
    if scale == 1 or value is None:
        return value
    try:
        return int(float(value) * scale)
    except (TypeError, ValueError):
        return value


def _deprecated(old: str, new: str) -> None:
    warnings.warn(
        f"ServerSettings.{old} is deprecated: use {new} ({_UNITS[new]})",
        DeprecationWarning,
        stacklevel=3,
    )

"""The example worker's settings, read from the environment (the server's names)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ExampleWorkerSettings(BaseSettings):
    """``JOBQUEUE_*`` variables; the same names the server and the client read.

    ``JOBQUEUE_REDIS_URL`` set means the direct path (this process talks to
    Redis); unset means the server path through ``JOBQUEUE_SERVER``.
    """

    model_config = SettingsConfigDict(env_prefix="JOBQUEUE_", extra="ignore")

    redis_url: str | None = None
    server: str = "localhost:8080"
    key_prefix: str = "jq"
    concurrency: int = Field(default=100, ge=1, le=10_000)
    lease_ms: int = Field(
        default=30_000,
        ge=100,
        description="How long a claimed job stays this worker's without a heartbeat.",
    )
    shutdown_grace_s: float = Field(
        default=10.0,
        ge=0,
        description="How long running jobs may finish on SIGTERM before they are released.",
    )
    auth_token: SecretStr | None = Field(
        default=None,
        description="Bearer token sent to a server that requires one (the gRPC path).",
    )
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="Log lines as text, or as one JSON object each (the SDK's JsonFormatter).",
    )

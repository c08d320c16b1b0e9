"""The dashboard's settings, read from ``JOBQUEUE_DASHBOARD_*`` by the package itself.

The server's settings class belongs to another part of the service; the
dashboard keeps its own small one so it can be mounted by any host (the server,
a test, an operator's own ASGI app) with the same environment names.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

_SHORT_TOKEN = 16


@dataclass(frozen=True, slots=True, kw_only=True)
class DashboardSettings:
    """What an operator may set.

    Without ``token`` and ``readonly_token`` the dashboard is open: whoever
    reaches the server's port may look and act (bind the server where only
    operators reach it). With either token set, every page needs a login.
    ``secret`` signs the session cookie; None draws a random one per process,
    so sessions end with a restart and are never signed with a known key.
    Sessions last ``session_max_age_ms`` (whole seconds count).
    """

    enabled: bool = True
    token: str | None = None
    readonly_token: str | None = None
    secret: str | None = None
    prefix: str = "/dashboard"
    sample_interval_ms: int = 5_000
    history_samples: int = 720
    live_interval_ms: int = 2_000
    page_size: int = 50
    session_max_age_ms: int = 12 * 3600 * 1000

    def __post_init__(self) -> None:
        if not self.prefix.startswith("/") or self.prefix.endswith("/") or len(self.prefix) < 2:
            raise ValueError(f"dashboard prefix {self.prefix!r}: like /dashboard, no trailing /")
        if self.token is not None and self.token == self.readonly_token:
            raise ValueError("the dashboard's admin and read-only tokens must differ")
        positive = ("sample_interval_ms", "history_samples", "live_interval_ms", "page_size")
        for name in (*positive, "session_max_age_ms"):
            if getattr(self, name) <= 0:
                raise ValueError(f"dashboard {name} must be positive")

    @property
    def auth_required(self) -> bool:
        return self.token is not None or self.readonly_token is not None

    @property
    def short_tokens(self) -> bool:
        """Whether a configured token is short enough to guess (the host logs a warning)."""
        return any(
            t is not None and len(t) < _SHORT_TOKEN for t in (self.token, self.readonly_token)
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DashboardSettings:
        """Settings from ``JOBQUEUE_DASHBOARD_*`` (``os.environ`` by default).

        Raises ValueError on a malformed value, so a server meant to be
        protected refuses to start rather than start open.
        """
        env = os.environ if env is None else env

        def text(name: str) -> str | None:
            value = env.get(f"JOBQUEUE_DASHBOARD_{name}", "").strip()
            return value or None

        def number(name: str, default: int) -> int:
            value = text(name)
            if value is None:
                return default
            try:
                return int(value)
            except ValueError:
                raise ValueError(f"JOBQUEUE_DASHBOARD_{name}: not an integer: {value!r}") from None

        enabled = (text("ENABLED") or "true").lower()
        if enabled not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(f"JOBQUEUE_DASHBOARD_ENABLED: not a boolean: {enabled!r}")
        return cls(
            enabled=enabled in ("true", "1", "yes"),
            token=text("TOKEN"),
            readonly_token=text("READONLY_TOKEN"),
            secret=text("SECRET"),
            prefix=text("PREFIX") or "/dashboard",
            sample_interval_ms=number("SAMPLE_INTERVAL_MS", 5_000),
            history_samples=number("HISTORY_SAMPLES", 720),
            page_size=number("PAGE_SIZE", 50),
        )

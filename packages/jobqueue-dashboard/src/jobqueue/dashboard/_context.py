"""What every handler of the dashboard shares: the use cases, the clock, templates, auth."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from jobqueue.domain import (
    AdminService,
    Clock,
    GateService,
    JobService,
    JobStatus,
    PresenceService,
    ScheduleService,
)

from . import _format
from ._auth import CSRF_FIELD, Role, csrf_token, current_role
from ._history import StatsHistory, StoreHistory
from ._login_limit import LoginLimiter
from ._notices import Notices
from ._settings import DashboardSettings

HERE = Path(__file__).parent

NAV = (
    ("overview", "/", "Overview"),
    ("types", "/types", "Job types"),
    ("jobs", "/jobs", "Jobs"),
    ("failed", "/failed", "Failed"),
    ("cancelled", "/cancelled", "Cancelled"),
    ("scheduled", "/scheduled", "Scheduled"),
    ("workers", "/workers", "Workers"),
    ("schedules", "/schedules", "Schedules"),
)
"""The menu: (name, path under the prefix, label). A new page adds one line."""


def _templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["iso"] = _format.iso
    env.filters["duration"] = _format.duration
    env.globals["statuses"] = [s.name.lower() for s in JobStatus]
    return Jinja2Templates(env=env)


@dataclass(slots=True, kw_only=True)
class Context:
    service: JobService
    clock: Clock
    settings: DashboardSettings
    history: StatsHistory | StoreHistory
    templates: Jinja2Templates = field(default_factory=_templates)
    closing: asyncio.Event = field(default_factory=asyncio.Event)
    gates: GateService | None = None
    """Pausing job types; None hides the types page's pause and resume buttons."""
    admin: AdminService | None = None
    """Retry, delete and bulk actions; None hides their buttons and forms."""
    presence: PresenceService | None = None
    """The live workers (workers page, the types page's "no worker" flag); None: unknown."""
    schedules: ScheduleService | None = None
    """Recurring schedules (the schedules page and its actions); None: not kept here."""
    session_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    """Keys the HMAC of a session's login token (see ``_auth.token_mark``)."""
    logins: LoginLimiter = field(default_factory=LoginLimiter)
    notices: Notices = field(default_factory=lambda: Notices(secrets.token_urlsafe(32)))

    def url(self, path: str) -> str:
        return self.settings.prefix + path

    def role(self, request: Request) -> Role | None:
        return current_role(request, self.settings, self.session_key)

    def render(
        self,
        request: Request,
        name: str,
        values: dict[str, Any],
        *,
        page: str = "",
        status_code: int = 200,
    ) -> HTMLResponse:
        role = self.role(request)
        base = {
            "prefix": self.settings.prefix,
            "nav": NAV,
            "page": page,
            "role": role.value if role else None,
            "can_act": role is Role.ADMIN,
            "can_admin": self.admin is not None,
            "auth_required": self.settings.auth_required,
            "csrf_field": CSRF_FIELD,
            "csrf_token": csrf_token(request),
            "now_ms": self.clock.now_ms(),
            "live_interval_ms": self.settings.live_interval_ms,
        }
        return self.templates.TemplateResponse(
            request, name, {**base, **values}, status_code=status_code
        )

    def viewer(self, request: Request) -> dict[str, Any]:
        """What a fragment's forms need about who looks: may they act, and their CSRF token.

        Read once when a live stream starts, so every update can carry action forms.
        """
        return {
            "can_act": self.role(request) is Role.ADMIN,
            "csrf_field": CSRF_FIELD,
            "csrf_token": csrf_token(request),
        }

    def fragment(self, name: str, values: dict[str, Any], viewer: dict[str, Any]) -> str:
        """A template rendered alone, for a live update sent over server-sent events."""
        return self.templates.get_template(name).render(
            {
                "prefix": self.settings.prefix,
                "now_ms": self.clock.now_ms(),
                "can_admin": self.admin is not None,
                **viewer,
                **values,
            }
        )

"""The dashboard as an ASGI app, and how a host mounts it beside its own app.

``Dashboard`` owns the Starlette app, the stats history and its sampler.
The host (jobqueue-server) hands it the ``JobService`` it already serves the
API with, so the dashboard shares the server's store and event loop and never
opens a connection of its own; ``mount`` puts it under a path prefix in front
of the host's ASGI app.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobqueue.domain import (
    AdminService,
    Clock,
    GateService,
    InvalidJob,
    InvalidTransition,
    JobAlreadyFinished,
    JobCounters,
    JobNotFound,
    JobQueueError,
    JobService,
    PresenceService,
    ScheduleNotFound,
    ScheduleService,
    StoreUnavailable,
)

from ._actions import Action, Actions, Endpoint
from ._auth import Role
from ._context import HERE, Context
from ._history import StatsHistory, StoreHistory
from ._live import Live
from ._notices import Notices
from ._pages import Pages
from ._schedules_page import SchedulesPage
from ._settings import DashboardSettings
from ._workers import WorkersPage

_log = logging.getLogger(__name__)

HostApp = Callable[[Any, Any, Any], Awaitable[None]]

SECURITY_HEADERS = [
    # Only the dashboard's own files: no inline script or style, no CDN, no framing.
    (b"content-security-policy", b"default-src 'self'; frame-ancestors 'none'; form-action 'self'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]

_STATUS_OF: list[tuple[type[JobQueueError], int]] = [
    (JobNotFound, 404),
    (ScheduleNotFound, 404),
    (InvalidJob, 400),
    (JobAlreadyFinished, 409),
    (InvalidTransition, 409),
    (StoreUnavailable, 503),
]


class _SecurityHeaders:
    """Adds the CSP and its companions to every response, errors included."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self._app(scope, receive, with_headers)


class Dashboard:
    """The web dashboard over one ``JobService``.

    Call ``sample_forever`` in a task for the overview's charts, ``close``
    before the host's HTTP server stops (it ends live streams).
    """

    def __init__(
        self,
        service: JobService,
        *,
        clock: Clock,
        settings: DashboardSettings | None = None,
        gates: GateService | None = None,
        admin: AdminService | None = None,
        counters: JobCounters | None = None,
        presence: PresenceService | None = None,
        schedules: ScheduleService | None = None,
    ) -> None:
        self.settings = settings or DashboardSettings()
        # The store's own series when it keeps one (it survives restarts), else a ring.
        self.history: StatsHistory | StoreHistory = (
            StatsHistory(self.settings.history_samples)
            if counters is None
            else StoreHistory(
                counters,
                clock=clock,
                window_ms=self.settings.history_samples * self.settings.sample_interval_ms,
            )
        )
        # One secret signs the cookies and keys the sessions' token marks: servers
        # sharing JOBQUEUE_DASHBOARD_SECRET accept each other's sessions.
        self._secret = self.settings.secret or secrets.token_urlsafe(32)
        self._ctx = Context(
            session_key=self._secret.encode(),
            notices=Notices(self._secret),
            service=service,
            clock=clock,
            settings=self.settings,
            history=self.history,
            gates=gates,
            admin=admin,
            presence=presence,
            schedules=schedules,
        )
        # Outside Starlette's own error middleware, so a 500 carries the headers too.
        self.app: ASGIApp = _SecurityHeaders(self._build())

    def _build(self) -> Starlette:
        ctx = self._ctx
        pages = Pages(ctx)
        actions = Actions(ctx)
        live = Live(ctx, pages)
        schedules = SchedulesPage(ctx)
        secret = self._secret
        if self.settings.secret is None and self.settings.auth_required:
            _log.info(
                "no JOBQUEUE_DASHBOARD_SECRET: dashboard sessions are signed with a random "
                "key and end when this server stops"
            )

        def page(
            handler: Callable[[Request], Awaitable[Response]],
        ) -> Callable[[Request], Awaitable[Response]]:
            async def endpoint(request: Request) -> Response:
                if ctx.role(request) is None:
                    return RedirectResponse(ctx.url("/login"), status_code=303)
                return await handler(request)

            return endpoint

        def act(action: Action, needs: Role | None = Role.ADMIN) -> Endpoint:
            return actions.guarded(action, needs=needs)

        routes = [
            Route("/", page(pages.overview)),
            Route("/types", page(pages.types)),
            Route("/jobs", page(pages.jobs)),
            Route("/jobs/{job_id}", page(pages.job)),
            Route("/failed", page(pages.failed)),
            Route("/cancelled", page(pages.cancelled)),
            Route("/scheduled", page(pages.scheduled)),
            Route("/workers", page(WorkersPage(ctx).workers)),
            Route("/schedules", page(schedules.schedules)),
            Route("/live/overview", page(live.overview)),
            Route("/live/types", page(live.types)),
            Route("/live/jobs/{job_id}", page(live.job)),
            Route("/login", actions.login_form, methods=["GET"]),
            Route("/login", act(actions.login, needs=None), methods=["POST"]),
            Route("/logout", act(actions.logout, needs=None), methods=["POST"]),
            Route("/jobs/{job_id}/cancel", act(actions.cancel), methods=["POST"]),
            Route("/jobs/{job_id}/retry", act(actions.retry), methods=["POST"]),
            Route("/jobs/{job_id}/delete", act(actions.delete), methods=["POST"]),
            Route("/{page:str}/bulk", act(actions.bulk), methods=["POST"]),
            Route("/types/{job_type}/pause", act(actions.pause_type), methods=["POST"]),
            Route("/types/{job_type}/resume", act(actions.resume_type), methods=["POST"]),
            *(
                Route(f"/schedules/{{schedule_id}}/{name}", act(handler), methods=["POST"])
                for name, handler in (
                    ("pause", schedules.pause),
                    ("resume", schedules.resume),
                    ("trigger", schedules.trigger),
                    ("delete", schedules.delete),
                )
            ),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ]

        async def domain_error(request: Request, error: Exception) -> Response:
            code = next((c for kind, c in _STATUS_OF if isinstance(error, kind)), 500)
            return ctx.render(
                request, "error.html", {"code": code, "message": str(error)}, status_code=code
            )

        async def http_error(request: Request, error: Exception) -> Response:
            assert isinstance(error, HTTPException)
            return ctx.render(
                request,
                "error.html",
                {"code": error.status_code, "message": error.detail},
                status_code=error.status_code,
            )

        prefix = self.settings.prefix

        async def to_root(request: Request) -> Response:
            return RedirectResponse(prefix + "/", status_code=308)

        return Starlette(
            routes=[
                Route(prefix, to_root),
                Mount(prefix, routes=routes),
            ],
            middleware=[
                Middleware(
                    SessionMiddleware,
                    secret_key=secret,
                    session_cookie="jobqueue_dashboard",
                    max_age=self.settings.session_max_age_ms // 1000,
                    path=prefix,
                    same_site="strict",
                ),
            ],
            exception_handlers={JobQueueError: domain_error, HTTPException: http_error},
        )

    async def sample_once(self) -> None:
        """Record the store's counts now into the ring (the store's series needs nothing)."""
        if isinstance(self.history, StatsHistory):
            self.history.record(self._ctx.clock.now_ms(), await self._ctx.service.stats())

    async def sample_forever(self) -> None:
        """Sample every ``sample_interval_ms`` until cancelled or closed; store errors skip one."""
        interval_s = self.settings.sample_interval_ms / 1000
        while not self._ctx.closing.is_set():
            try:
                await self.sample_once()
            except JobQueueError as error:
                _log.debug("dashboard stats sample failed: %s", error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ctx.closing.wait(), interval_s)

    def close(self) -> None:
        """End live streams and the sampler: the host is stopping."""
        self._ctx.closing.set()

    def mount(self, host: HostApp) -> ASGIApp:
        """An ASGI app sending the prefix's requests here and every other one to ``host``.

        ``host`` is any ASGI app; typed loosely because hosts spell ASGI's
        types their own way (``WireApp`` takes plain dicts).
        """
        prefix = self.settings.prefix
        app = self.app

        async def router(scope: Scope, receive: Receive, send: Send) -> None:
            path = scope.get("path", "")
            if scope["type"] == "http" and (path == prefix or path.startswith(prefix + "/")):
                await app(scope, receive, send)
            else:
                await host(scope, receive, send)

        return router

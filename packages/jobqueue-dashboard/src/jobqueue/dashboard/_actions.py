"""The POST endpoints: log in, log out, and actions on jobs through domain use cases.

Every POST goes through ``guarded``: the session's CSRF token must come back
in the form, and only an ADMIN may act (a READER gets 403, nothing changes).
An action is a small method calling one use case, then redirecting back
(post/redirect/get), so pages work without JavaScript too.

Who did what is logged (logger ``jobqueue.dashboard.audit``): a failed login
at WARNING with the client's address (never the token's text), and every
change an admin makes at INFO with the role, the action, its target or
filter, and what it counted.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from . import _admin_actions as admin_actions
from ._auth import CSRF_FIELD, Role, csrf_ok, log_in, log_out, role_for_token, token_mark
from ._context import Context

_audit = logging.getLogger("jobqueue.dashboard.audit")

Action = Callable[[Request, FormData], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]
_CSRF_REFUSED = (
    "The form expired or came from elsewhere (CSRF check). Reload the page and try again."
)


def audit(context: Context, request: Request, action: str, target: str, **counts: Any) -> None:
    """Log a change an admin made: role, action, target or filter, counts."""
    role = context.role(request)
    counted = "".join(f" {name}={value}" for name, value in counts.items())
    _audit.info("dashboard %s: %s %s%s", role.value if role else "-", action, target, counted)


class Actions:
    def __init__(self, context: Context) -> None:
        self._ctx = context

    def guarded(
        self, action: Action, *, needs: Role | None = Role.ADMIN
    ) -> Callable[[Request], Awaitable[Response]]:
        """Wrap an action in the CSRF check and the role check, in that order."""

        async def endpoint(request: Request) -> Response:
            form = await request.form()
            submitted = form.get(CSRF_FIELD)
            if not isinstance(submitted, str) or not csrf_ok(request, submitted):
                return self._refuse(request, 403, _CSRF_REFUSED)
            role = self._ctx.role(request)
            if needs is not None and role is None:
                return RedirectResponse(self._ctx.url("/login"), status_code=303)
            if needs is Role.ADMIN and role is not Role.ADMIN:
                return self._refuse(request, 403, "This login is read-only: it cannot change jobs.")
            return await action(request, form)

        return endpoint

    def _refuse(self, request: Request, code: int, message: str) -> Response:
        return self._ctx.render(
            request, "error.html", {"code": code, "message": message}, status_code=code
        )

    # --- session ----------------------------------------------------------

    async def login_form(self, request: Request) -> Response:
        if not self._ctx.settings.auth_required:
            return RedirectResponse(self._ctx.url("/"), status_code=303)
        return self._ctx.render(request, "login.html", {"error": None})

    async def login(self, request: Request, form: FormData) -> Response:
        address = request.client.host if request.client else "unknown"
        now_ms = self._ctx.clock.now_ms()
        limiter = self._ctx.logins
        if limiter.blocked(address, now_ms):
            # Checked before the token: while blocked, even the right one waits.
            # DEBUG: a flood of refused attempts must not flood the log too (the
            # WARNING lines of the failures that led here already name the address).
            _audit.debug("dashboard login refused: too many failures from %s", address)
            return self._ctx.render(
                request,
                "login.html",
                {"error": "Too many failed logins from here. Wait a minute and try again."},
                status_code=429,
            )
        token = form.get("token")
        role = role_for_token(self._ctx.settings, token) if isinstance(token, str) else None
        if role is None or not isinstance(token, str):
            limiter.failed(address, now_ms)
            _audit.warning("dashboard login failed from %s: wrong token", address)
            if limiter.blocked(address, now_ms):
                _audit.warning("dashboard logins from %s refused for a minute", address)
            return self._ctx.render(
                request, "login.html", {"error": "Wrong token."}, status_code=401
            )
        log_in(request, role, token_mark(self._ctx.session_key, token))
        _audit.info("dashboard login: %s from %s", role.value, address)
        return RedirectResponse(self._ctx.url("/"), status_code=303)

    def _did(self, request: Request, action: str, target: str, **counts: Any) -> None:
        audit(self._ctx, request, action, target, **counts)

    async def logout(self, request: Request, form: FormData) -> Response:
        del form
        log_out(request)
        return RedirectResponse(self._ctx.url("/login"), status_code=303)

    # --- jobs -------------------------------------------------------------

    async def cancel(self, request: Request, form: FormData) -> Response:
        del form
        job = await self._ctx.service.cancel(request.path_params["job_id"])
        self._did(request, "cancel", f"job {job.id}", status=job.status.name)
        return RedirectResponse(self._ctx.url(f"/jobs/{quote(job.id, safe='')}"), status_code=303)

    async def retry(self, request: Request, form: FormData) -> Response:
        del form
        admin = self._ctx.admin
        if admin is None:
            return self._refuse(request, 404, "Retrying jobs is not available here.")
        job = await admin.retry(request.path_params["job_id"])
        self._did(request, "retry", f"job {job.id}")
        return RedirectResponse(self._ctx.url(f"/jobs/{quote(job.id, safe='')}"), status_code=303)

    async def delete(self, request: Request, form: FormData) -> Response:
        del form
        admin = self._ctx.admin
        if admin is None:
            return self._refuse(request, 404, "Deleting jobs is not available here.")
        job = await admin.delete(request.path_params["job_id"])
        self._did(request, "delete", f"job {job.id}", status=job.status.name)
        target = admin_actions.after_delete(job, self._ctx.notices.sign)
        return RedirectResponse(self._ctx.url(target), status_code=303)

    async def bulk(self, request: Request, form: FormData) -> Response:
        """An action over the filter of the page the form sits on (see ``_admin_actions``)."""
        admin = self._ctx.admin
        if admin is None:
            return self._refuse(request, 404, "Bulk actions are not available here.")
        page = request.path_params["page"]
        job_filter = admin_actions.bulk_filter(page, form)
        action = admin_actions.bulk_action(form)
        matched, changed = await admin_actions.run_bulk(admin, action, job_filter)
        self._did(
            request,
            f"bulk {action.name.lower()}",
            f"type={job_filter.type or '*'} "
            f"status={job_filter.status.name if job_filter.status else '*'} "
            f"updated_before_ms={job_filter.updated_before_ms or '-'}",
            matched=matched,
            changed=changed,
        )
        notice = self._ctx.notices.sign(admin_actions.bulk_notice(action, matched, changed))
        target = admin_actions.back_to(page, job_filter, form, notice)
        return RedirectResponse(self._ctx.url(target), status_code=303)

    # --- job types --------------------------------------------------------

    async def pause_type(self, request: Request, form: FormData) -> Response:
        return await self._gate(request, form, paused=True)

    async def resume_type(self, request: Request, form: FormData) -> Response:
        return await self._gate(request, form, paused=False)

    async def _gate(self, request: Request, form: FormData, *, paused: bool) -> Response:
        del form
        gates = self._ctx.gates
        if gates is None:
            return self._refuse(request, 404, "Pausing job types is not available here.")
        job_type = request.path_params["job_type"]
        changed = await (gates.pause_type if paused else gates.resume_type)(job_type)
        self._did(request, "pause" if paused else "resume", f"type {job_type}", changed=changed)
        return RedirectResponse(self._ctx.url("/types"), status_code=303)

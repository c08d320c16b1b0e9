"""The POST endpoints: log in, log out, and actions on jobs through domain use cases.

Every POST goes through ``guarded``: the session's CSRF token must come back
in the form, and only an ADMIN may act (a READER gets 403, nothing changes).
An action is a small method calling one use case, then redirecting back
(post/redirect/get), so pages work without JavaScript too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import quote

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from . import _admin_actions as admin_actions
from ._auth import CSRF_FIELD, Role, csrf_ok, log_in, log_out, role_for_token
from ._context import Context

Action = Callable[[Request, FormData], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]
_CSRF_REFUSED = (
    "The form expired or came from elsewhere (CSRF check). Reload the page and try again."
)


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
        token = form.get("token")
        role = role_for_token(self._ctx.settings, token) if isinstance(token, str) else None
        if role is None:
            return self._ctx.render(
                request, "login.html", {"error": "Wrong token."}, status_code=401
            )
        log_in(request, role)
        return RedirectResponse(self._ctx.url("/"), status_code=303)

    async def logout(self, request: Request, form: FormData) -> Response:
        del form
        log_out(request)
        return RedirectResponse(self._ctx.url("/login"), status_code=303)

    # --- jobs -------------------------------------------------------------

    async def cancel(self, request: Request, form: FormData) -> Response:
        del form
        job = await self._ctx.service.cancel(request.path_params["job_id"])
        return RedirectResponse(self._ctx.url(f"/jobs/{quote(job.id, safe='')}"), status_code=303)

    async def retry(self, request: Request, form: FormData) -> Response:
        del form
        admin = self._ctx.admin
        if admin is None:
            return self._refuse(request, 404, "Retrying jobs is not available here.")
        job = await admin.retry(request.path_params["job_id"])
        return RedirectResponse(self._ctx.url(f"/jobs/{quote(job.id, safe='')}"), status_code=303)

    async def delete(self, request: Request, form: FormData) -> Response:
        del form
        admin = self._ctx.admin
        if admin is None:
            return self._refuse(request, 404, "Deleting jobs is not available here.")
        job = await admin.delete(request.path_params["job_id"])
        return RedirectResponse(self._ctx.url(admin_actions.after_delete(job)), status_code=303)

    async def bulk(self, request: Request, form: FormData) -> Response:
        """An action over the filter of the page the form sits on (see ``_admin_actions``)."""
        admin = self._ctx.admin
        if admin is None:
            return self._refuse(request, 404, "Bulk actions are not available here.")
        page = request.path_params["page"]
        job_filter = admin_actions.bulk_filter(page, form)
        action = admin_actions.bulk_action(form)
        notice = await admin_actions.run_bulk(admin, action, job_filter)
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
        if paused:
            await gates.pause_type(job_type)
        else:
            await gates.resume_type(job_type)
        return RedirectResponse(self._ctx.url("/types"), status_code=303)

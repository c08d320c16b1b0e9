"""The read-only pages: overview, job types, job listings, one job.

Each handler reads through ``JobService`` (the same use cases as the API) and
renders a template; nothing here writes. A new page is a method here, a line
in ``_routes.py`` and one in ``NAV``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from jobqueue.domain import InvalidJob, JobStatus

from . import _format
from ._charts import line_chart, rate_chart
from ._context import Context
from ._queries import Filter, list_page, scheduled_page


class Pages:
    def __init__(self, context: Context) -> None:
        self._ctx = context

    # --- overview ---------------------------------------------------------

    async def overview(self, request: Request) -> Response:
        return self._ctx.render(
            request, "overview.html", await self.overview_values(), page="overview"
        )

    async def overview_values(self) -> dict[str, Any]:
        """What the overview shows, also sent alone as its live update."""
        stats = await self._ctx.service.stats()
        history = self._ctx.history
        samples = await history.read()
        total = stats.total
        presence = self._ctx.presence
        return {
            # None: this server keeps no presence, so the card is left out.
            "workers_alive": None if presence is None else len(await presence.list_workers()),
            "unattended": [t.type for t in stats.types if t.unattended and not t.paused]
            if presence is not None
            else [],
            "stats": stats,
            "total": total,
            "depth": total.pending + total.scheduled,
            "charts": [
                line_chart("Queue depth", samples, history.depth_states),
                rate_chart("Finished per minute", samples, ("completed", "failed", "cancelled")),
            ],
            "sample_interval_s": self._ctx.settings.sample_interval_ms / 1000,
        }

    # --- job types --------------------------------------------------------

    async def types(self, request: Request) -> Response:
        return self._ctx.render(request, "types.html", await self.types_values(), page="types")

    async def types_values(self) -> dict[str, Any]:
        # The store's stats carry each type's oldest pending age (by its own clock)
        # and its live workers, so the page reads nothing per type.
        stats = await self._ctx.service.stats()
        return {
            "stats": stats,
            "can_pause": self._ctx.gates is not None,
            "knows_workers": self._ctx.presence is not None,
        }

    # --- listings ---------------------------------------------------------

    async def jobs(self, request: Request) -> Response:
        return await self._listing(request, page="jobs", fixed=None)

    async def failed(self, request: Request) -> Response:
        return await self._listing(request, page="failed", fixed=JobStatus.FAILED)

    async def cancelled(self, request: Request) -> Response:
        return await self._listing(request, page="cancelled", fixed=JobStatus.CANCELLED)

    async def _listing(self, request: Request, *, page: str, fixed: JobStatus | None) -> Response:
        params = request.query_params
        job_id = params.get("id", "").strip()
        if job_id:
            target = self._ctx.url(f"/jobs/{quote(job_id, safe='')}")
            if request.headers.get("hx-request") == "true":
                # The browser would follow a 303 inside htmx's request and swap in a
                # page without the results; HX-Redirect makes htmx navigate instead.
                return Response(status_code=200, headers={"hx-redirect": target})
            return RedirectResponse(target, status_code=303)
        wanted = Filter(
            type=params.get("type", "").strip() or None,
            status=fixed or _status(params.get("status", "")),
            since_ms=_time("since", params.get("since", "")),
            until_ms=_time("until", params.get("until", "")),
        )
        cursor = params.get("cursor", "")
        listing = await list_page(
            self._ctx.service, wanted, cursor=cursor, size=self._ctx.settings.page_size
        )
        values = {
            "title": {"jobs": "Jobs", "failed": "Failed jobs", "cancelled": "Cancelled jobs"}[page],
            "path": self._ctx.url("/" + page),
            "fixed_status": fixed.name.lower() if fixed else None,
            "filter": {
                "type": wanted.type or "",
                "status": wanted.status.name.lower() if wanted.status else "",
                "since": params.get("since", ""),
                "until": params.get("until", ""),
            },
            "jobs": listing.jobs,
            "next_cursor": listing.next_cursor,
            "first_page": not cursor,
            # What a bulk action just did (_admin_actions.py), shown once above the list.
            "notice": self._ctx.notices.read(params.get("notice", "")),
        }
        return self._ctx.render(request, "jobs.html", values, page=page)

    async def scheduled(self, request: Request) -> Response:
        stats = await self._ctx.service.stats()
        waiting = [t for t in stats.types if t.scheduled]
        chosen = request.query_params.get("type", "").strip() or (
            waiting[0].type if waiting else ""
        )
        jobs: list[Any] = []
        next_cursor = ""
        if chosen:
            listing = await scheduled_page(
                self._ctx.service,
                chosen,
                now_ms=self._ctx.clock.now_ms(),
                cursor=request.query_params.get("cursor", ""),
                size=self._ctx.settings.page_size,
            )
            jobs, next_cursor = listing.jobs, listing.next_cursor
        values = {"waiting": waiting, "chosen": chosen, "jobs": jobs, "next_cursor": next_cursor}
        return self._ctx.render(request, "scheduled.html", values, page="scheduled")

    # --- one job ----------------------------------------------------------

    async def job(self, request: Request) -> Response:
        job = await self._ctx.service.get(request.path_params["job_id"])
        values = {
            "job": job,
            "payload": _format.show_bytes(job.payload),
            "result": _format.show_bytes(job.result),
        }
        return self._ctx.render(request, "job.html", values, page="jobs")

    async def not_found(self, request: Request) -> HTMLResponse:
        return self._ctx.render(
            request, "error.html", {"code": 404, "message": "No such page."}, status_code=404
        )


def _status(text: str) -> JobStatus | None:
    text = text.strip().upper()
    if not text:
        return None
    try:
        return JobStatus[text]
    except KeyError:
        raise InvalidJob("status", f"unknown status {text.lower()!r}") from None


def _time(field: str, text: str) -> int | None:
    try:
        return _format.parse_time(text)
    except ValueError:
        raise InvalidJob(field, "expects a time like 2026-12-01T06:00:00 (UTC)") from None

"""The schedules page: every recurring schedule, its next tick and what it last did.

It reads and acts through the domain's ``ScheduleService``, the one behind
the API's ScheduleService, so a pause, resume, trigger or delete from here is
the same call as ``jobqueue schedules pause``. The actions are POSTs wrapped
by ``Actions.guarded`` (CSRF first, then an ADMIN role: a read-only login
sees the page and changes nothing) and redirect back with a signed notice.
"""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from jobqueue.domain import Schedule

from . import _format
from ._actions import audit
from ._context import Context


def rule(schedule: Schedule) -> str:
    """How the schedule ticks, as people read it."""
    if schedule.cron is not None:
        return f"cron {schedule.cron} ({schedule.time_zone})"
    return f"every {_format.duration(schedule.interval_ms or 0)}"


class SchedulesPage:
    def __init__(self, context: Context) -> None:
        self._ctx = context

    async def schedules(self, request: Request) -> Response:
        service = self._ctx.schedules
        found = [] if service is None else await service.list_schedules()
        values = {
            "knows_schedules": service is not None,
            "schedules": [(schedule, rule(schedule)) for schedule in found],
            "notice": self._ctx.notices.read(request.query_params.get("notice", "")),
        }
        return self._ctx.render(request, "schedules.html", values, page="schedules")

    async def pause(self, request: Request, form: FormData) -> Response:
        return await self._act(request, "pause")

    async def resume(self, request: Request, form: FormData) -> Response:
        return await self._act(request, "resume")

    async def trigger(self, request: Request, form: FormData) -> Response:
        return await self._act(request, "trigger")

    async def delete(self, request: Request, form: FormData) -> Response:
        return await self._act(request, "delete")

    async def _act(self, request: Request, action: str) -> Response:
        service = self._ctx.schedules
        if service is None:
            return self._ctx.render(
                request,
                "error.html",
                {"code": 404, "message": "Schedules are not available here."},
                status_code=404,
            )
        schedule_id = request.path_params["schedule_id"]
        if action == "pause":
            name = (await service.pause(schedule_id)).name
            notice = f"Paused schedule {name}."
        elif action == "resume":
            name = (await service.resume(schedule_id)).name
            notice = f"Resumed schedule {name}: it fires from now on."
        elif action == "trigger":
            job = await service.trigger(schedule_id)
            notice = f"Triggered schedule {schedule_id}: job {job.id}."
        else:
            await service.delete(schedule_id)
            notice = f"Deleted schedule {schedule_id}; its jobs stay."
        audit(self._ctx, request, f"{action} schedule", schedule_id)
        query = urlencode({"notice": self._ctx.notices.sign(notice)})
        return RedirectResponse(self._ctx.url(f"/schedules?{query}"), status_code=303)

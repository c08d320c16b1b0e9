"""The workers page: every live worker, who it is, what it handles, how busy it is.

It reads the presence use case (``PresenceService``), the same one behind
``AdminService.ListWorkers``: a worker is listed from its first heartbeat
until its own time to live passes without another, or it stops.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ._context import Context


class WorkersPage:
    def __init__(self, context: Context) -> None:
        self._ctx = context

    async def workers(self, request: Request) -> Response:
        presence = self._ctx.presence
        workers = [] if presence is None else await presence.list_workers()
        values = {
            "workers": workers,
            "knows_workers": presence is not None,
            "busy": sum(worker.busy for worker in workers),
            "slots": sum(worker.concurrency for worker in workers),
        }
        return self._ctx.render(request, "workers.html", values, page="workers")

"""Live updates by server-sent events: the page's live region, re-rendered on the server.

A page that has a live region names its stream in ``data-live``; the static
script opens an EventSource on it and swaps each ``refresh`` event's HTML into
the region. The overview and types pages re-render on a timer (counts have no
change feed); a job's page follows ``JobService.watch`` and ends with the job.
Streams end when the dashboard closes, so a server's graceful stop never waits
on an open browser tab.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from markupsafe import escape
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from jobqueue.domain import JobQueueError

from . import _format
from ._context import Context
from ._pages import Pages

Render = Callable[[], Awaitable[str]]

_COST_FACTOR = 10
"""A live region waits at least this many times its last render's duration."""


def event(name: str, html: str) -> str:
    """One SSE event; every line of the HTML goes in a ``data:`` line of its own."""
    data = "\n".join(f"data: {line}" for line in html.splitlines() or [""])
    return f"event: {name}\n{data}\n\n"


class Live:
    def __init__(self, context: Context, pages: Pages) -> None:
        self._ctx = context
        self._pages = pages

    def _stream(self, body: AsyncIterator[str]) -> Response:
        return StreamingResponse(
            body,
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    async def overview(self, request: Request) -> Response:
        viewer = self._ctx.viewer(request)

        async def render() -> str:
            values = await self._pages.overview_values()
            return self._ctx.fragment("_overview_live.html", values, viewer)

        return self._stream(self._ticking(render))

    async def types(self, request: Request) -> Response:
        viewer = self._ctx.viewer(request)

        async def render() -> str:
            values = await self._pages.types_values()
            return self._ctx.fragment("_types_live.html", values, viewer)

        return self._stream(self._ticking(render))

    async def job(self, request: Request) -> Response:
        job_id = request.path_params["job_id"]
        # The fragment carries the job's action forms.
        return self._stream(self._watching(job_id, self._ctx.viewer(request)))

    async def _ticking(self, render: Render) -> AsyncIterator[str]:
        interval_s = self._ctx.settings.live_interval_ms / 1000
        yield f"retry: {self._ctx.settings.live_interval_ms * 2}\n\n"
        while not self._ctx.closing.is_set():
            started = time.monotonic()
            try:
                yield event("refresh", await render())
            except JobQueueError as error:  # the store is down: say so, keep the stream
                yield event("problem", f"<p>{escape(str(error))}</p>")
            # A render that costs much (a big in-memory store) waits longer, so an
            # open tab never takes more than a tenth of the server's loop.
            pause_s = max(interval_s, _COST_FACTOR * (time.monotonic() - started))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ctx.closing.wait(), pause_s)

    async def _watching(self, job_id: str, viewer: dict[str, Any]) -> AsyncIterator[str]:
        yield f"retry: {self._ctx.settings.live_interval_ms * 2}\n\n"
        changes = self._ctx.service.watch(job_id)
        closing = asyncio.ensure_future(self._ctx.closing.wait())
        try:
            while True:
                step = asyncio.ensure_future(anext(changes))
                done, _ = await asyncio.wait({step, closing}, return_when=asyncio.FIRST_COMPLETED)
                if step not in done:
                    step.cancel()
                    with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                        await step
                    return
                try:
                    job = step.result()
                except StopAsyncIteration:
                    yield "event: done\ndata: \n\n"
                    return
                values = {"job": job, "result": _format.show_bytes(job.result)}
                yield event("refresh", self._ctx.fragment("_job_live.html", values, viewer))
        except JobQueueError as error:
            yield event("problem", f"<p>{escape(str(error))}</p>")
        finally:
            closing.cancel()
            aclose = getattr(changes, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()

"""Retry, delete and bulk actions from the dashboard, over the domain's ``AdminService``.

A bulk form carries the filter of the page it sits on (type, status, and
the "until" bound), and the action loops the service's bounded calls until
the filter is done: each call examines at most ``BULK_STEP`` jobs, so the
store serves everyone else between calls while the browser waits for one
redirect. The page then says what was done (``notice`` in its query, signed
by ``_notices``: a query anyone can write must not put words on the page).
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from starlette.datastructures import FormData

from jobqueue.domain import (
    AdminService,
    BulkAction,
    InvalidJob,
    Job,
    JobFilter,
    JobStatus,
)

from . import _format

BULK_STEP = 1_000
"""Jobs one bulk call examines (the service's default bound)."""

BULK_PAGES: dict[str, JobStatus | None] = {
    "jobs": None,
    "failed": JobStatus.FAILED,
    "cancelled": JobStatus.CANCELLED,
}
"""The pages that offer bulk actions, and the status each fixes."""

_ACTIONS = {"retry": BulkAction.RETRY, "delete": BulkAction.DELETE, "cancel": BulkAction.CANCEL}
_DONE = {BulkAction.RETRY: "Retried", BulkAction.DELETE: "Deleted", BulkAction.CANCEL: "Cancelled"}


def _field(form: FormData, name: str) -> str:
    value = form.get(name, "")
    return value.strip() if isinstance(value, str) else ""


def bulk_filter(page: str, form: FormData) -> JobFilter:
    """The filter of the page the form sits on; InvalidJob for one a bulk action cannot take."""
    if page not in BULK_PAGES:
        raise InvalidJob("page", f"no bulk actions on {page!r}")
    status = BULK_PAGES[page]
    if status is None and (text := _field(form, "status")):
        try:
            status = JobStatus[text.upper()]
        except KeyError:
            raise InvalidJob("status", f"unknown status {text.lower()!r}") from None
    if _field(form, "since"):
        raise InvalidJob("since", "a bulk action takes an 'until' bound only; clear 'From'")
    try:
        until_ms = _format.parse_time(_field(form, "until"))
    except ValueError:
        raise InvalidJob("until", "expects a time like 2026-12-01T06:00:00 (UTC)") from None
    return JobFilter(
        type=_field(form, "type") or None,
        status=status,
        # The page's "until" keeps jobs at that very millisecond: before it + 1.
        updated_before_ms=None if until_ms is None else until_ms + 1,
    )


def bulk_action(form: FormData) -> BulkAction:
    action = _ACTIONS.get(_field(form, "action"))
    if action is None:
        raise InvalidJob("action", "must be retry, delete or cancel")
    return action


async def run_bulk(
    admin: AdminService, action: BulkAction, job_filter: JobFilter
) -> tuple[int, int]:
    """Apply ``action`` to every job of the filter, a bounded call at a time.

    Returns how many jobs matched and how many it changed.
    """
    matched = changed = 0
    cursor = ""
    while True:
        result = await admin.bulk(action, job_filter, limit=BULK_STEP, cursor=cursor)
        matched += result.matched
        changed += result.changed
        cursor = result.next_cursor
        if not cursor:
            break
    return matched, changed


def bulk_notice(action: BulkAction, matched: int, changed: int) -> str:
    return f"{_DONE[action]} {changed} of {matched} matching jobs."


def back_to(page: str, job_filter: JobFilter, form: FormData, notice: str) -> str:
    """The page's URL with its filter and the (signed) notice of what was done."""
    query = {"type": job_filter.type or "", "notice": notice}
    if BULK_PAGES.get(page) is None and job_filter.status is not None:
        query["status"] = job_filter.status.name.lower()
    if until := _field(form, "until"):
        query["until"] = until
    return f"/{page}?{urlencode(query)}"


def after_delete(job: Job, sign: Callable[[str], str]) -> str:
    """Where a deleted job's page sends the browser: the list it was on."""
    page = {JobStatus.FAILED: "failed", JobStatus.CANCELLED: "cancelled"}.get(job.status, "jobs")
    return f"/{page}?{urlencode({'notice': sign(f'Deleted job {job.id}.')})}"

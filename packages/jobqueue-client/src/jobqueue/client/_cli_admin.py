"""`jobqueue retry|delete ID`, `jobqueue purge`, `jobqueue bulk ACTION`: operators' actions.

A bulk action loops the server's bounded pages until the filter is done,
printing each page's counts as it goes (on stderr, so ``--json`` output
stays one object). Cancelling and deleting cannot be undone: on a terminal
they ask first, and off one (a script) they need ``--yes``, so a pipeline
never purges by a forgotten flag.

``--status`` names statuses as ``list`` and ``stats`` do: ``pending`` is
PENDING and due now, ``scheduled`` PENDING and due later. The server's filter
knows PENDING only, so for those two the command lists the PENDING jobs,
keeps the ones of the asked kind, and acts on each: only a cancel can change
a PENDING job, so retry and delete count them as matched without a call.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import click

from ._admin_calls import BulkAction, BulkTotals
from ._cli_input import duration_option
from ._cli_output import SCHEDULED, shown_status
from ._cli_settings import Settings, json_flag, pass_settings
from ._errors import JobAlreadyFinished, JobNotFound
from ._models import JobStatus

F = TypeVar("F", bound=Callable[..., Any])

_STATUSES = [status.value for status in JobStatus] + [SCHEDULED]
_SPLIT = {JobStatus.PENDING.value, SCHEDULED}
_DONE = {BulkAction.RETRY: "retried", BulkAction.CANCEL: "cancelled", BulkAction.DELETE: "deleted"}


@click.command()
@click.argument("job_id", metavar="ID")
@json_flag
@pass_settings
def retry(settings: Settings, job_id: str) -> None:
    """Run a FAILED or CANCELLED job again, with a fresh attempt budget."""
    settings.output.job(settings.connect().retry_job(job_id))


@click.command()
@click.argument("job_id", metavar="ID")
@json_flag
@pass_settings
def delete(settings: Settings, job_id: str) -> None:
    """Forget a finished job now (a pending or running one must be cancelled first)."""
    job = settings.connect().delete_job(job_id)
    settings.output.message(f"deleted job {job.id} ({job.status.value})")
    if settings.output.as_json:
        settings.output.json_line({"deleted": job.id, "status": job.status.value})


def _filter_options(command: F) -> F:
    for option in reversed(
        [
            click.option("--type", "job_type", help="Only jobs of this type."),
            click.option(
                "--status",
                type=click.Choice(_STATUSES, case_sensitive=False),
                help="Only jobs in this status; pending means due now, scheduled due later "
                "(as in list and stats).",
            ),
            click.option(
                "--older-than",
                "older_than_s",
                callback=duration_option,
                help="Only jobs last updated longer ago than this (30m, 7d).",
            ),
            click.option(
                "--limit",
                type=click.IntRange(0, 10_000),
                default=0,
                help="Jobs the server examines per call (0: its default, 1,000).",
            ),
            click.option("--yes", "-y", is_flag=True, help="Do not ask before cancel or delete."),
        ]
    ):
        command = option(command)
    return command


@dataclass(frozen=True, slots=True)
class _Filter:
    """What ``_filter_options`` reads, given to ``bulk`` and ``purge`` as keywords."""

    job_type: str | None
    status: str | None
    older_than_s: float | None
    limit: int
    yes: bool


def _run(settings: Settings, action: BulkAction, given: _Filter) -> None:
    what = _describe(given.job_type, given.status, given.older_than_s)
    if action is not BulkAction.RETRY and not given.yes:
        if not sys.stdin.isatty():
            raise click.UsageError(f"{action.value} over {what} cannot be undone: add --yes")
        click.confirm(f"{action.value} {what}?", abort=True, err=True)
    if given.status is not None and given.status.lower() in _SPLIT:
        totals = _run_split(
            settings,
            action,
            given.job_type,
            given.status.lower(),
            given.older_than_s,
            given.limit,
        )
        _report(settings, action, totals)
        return
    client = settings.connect()
    matched = changed = calls = 0
    token = ""
    while True:
        page = client.bulk_page(
            action,
            type=given.job_type,
            status=given.status,
            older_than_s=given.older_than_s,
            limit=given.limit,
            page_token=token,
        )
        matched, changed, calls = matched + page.matched, changed + page.changed, calls + 1
        if not settings.output.as_json and page.next_page_token:
            click.echo(f"... {matched} examined, {changed} {_DONE[action]}", err=True)
        token = page.next_page_token
        if not token:
            break
    _report(settings, action, BulkTotals(matched, changed, calls))


def _run_split(
    settings: Settings,
    action: BulkAction,
    job_type: str | None,
    wanted: str,
    older_than_s: float | None,
    limit: int,
) -> BulkTotals:
    """The action on the PENDING jobs due now (``pending``) or later (``scheduled``)."""
    client = settings.connect()
    now = datetime.now(UTC)
    before = None if older_than_s is None else now - timedelta(seconds=older_than_s)
    # Ids first, then the actions: cancelling while paging would move the pages.
    ids = [
        job.id
        for job in client.list(job_type, JobStatus.PENDING.value, page_size=limit or 1_000)
        if shown_status(job, now) == wanted and (before is None or job.updated_at < before)
    ]
    if action is not BulkAction.CANCEL:
        return BulkTotals(len(ids), 0, 0)  # a PENDING job is neither retried nor deleted
    changed = 0
    for done, job_id in enumerate(ids, 1):
        try:
            client.cancel(job_id)
        except (JobNotFound, JobAlreadyFinished):
            continue  # it ran, ended or went meanwhile: matched, not changed
        changed += 1
        if not settings.output.as_json and done % 1_000 == 0:
            click.echo(f"... {done} examined, {changed} {_DONE[action]}", err=True)
    return BulkTotals(len(ids), changed, len(ids))


def _describe(job_type: str | None, status: str | None, older_than_s: float | None) -> str:
    parts = [f"{status or 'all'} jobs"]
    if job_type:
        parts.append(f"of type {job_type}")
    if older_than_s is not None:
        parts.append(f"updated over {older_than_s:g}s ago")
    return " ".join(parts)


def _report(settings: Settings, action: BulkAction, totals: BulkTotals) -> None:
    output = settings.output
    if output.as_json:
        output.json_line(
            {
                "action": action.value,
                "matched": totals.matched,
                "changed": totals.changed,
                "calls": totals.calls,
            }
        )
        return
    output.message(f"{_DONE[action]} {totals.changed} of {totals.matched} matching jobs")


@click.command()
@click.argument("action", type=click.Choice([a.value for a in BulkAction], case_sensitive=False))
@_filter_options
@json_flag
@pass_settings
def bulk(settings: Settings, /, action: str, **given: Any) -> None:
    """Retry, cancel or delete every job matching the filter, a bounded page at a time.

    A job the action does not apply to (retrying a completed job) is counted, not changed.
    """
    _run(settings, BulkAction(action.lower()), _Filter(**given))


@click.command()
@_filter_options
@json_flag
@pass_settings
def purge(settings: Settings, /, **given: Any) -> None:
    """Delete the finished jobs matching the filter (`bulk delete`), e.g. --older-than 7d."""
    _run(settings, BulkAction.DELETE, _Filter(**given))

"""`jobqueue retry|delete ID`, `jobqueue purge`, `jobqueue bulk ACTION`: operators' actions.

A bulk action loops the server's bounded pages until the filter is done,
printing each page's counts as it goes (on stderr, so ``--json`` output
stays one object). Cancelling and deleting cannot be undone: on a terminal
they ask first, and off one (a script) they need ``--yes``, so a pipeline
never purges by a forgotten flag.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from ._admin_calls import BulkAction, BulkTotals
from ._cli_input import duration_option
from ._cli_settings import Settings, json_flag, pass_settings
from ._models import JobStatus

F = TypeVar("F", bound=Callable[..., Any])

_STATUSES = [status.value for status in JobStatus]
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
                help="Only jobs in this status.",
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


def _run(
    settings: Settings,
    action: BulkAction,
    job_type: str | None,
    status: str | None,
    older_than_s: float | None,
    limit: int,
    yes: bool,
) -> None:
    what = _describe(job_type, status, older_than_s)
    if action is not BulkAction.RETRY and not yes:
        if not sys.stdin.isatty():
            raise click.UsageError(f"{action.value} over {what} cannot be undone: add --yes")
        click.confirm(f"{action.value} {what}?", abort=True, err=True)
    client = settings.connect()
    matched = changed = calls = 0
    token = ""
    while True:
        page = client.bulk_page(
            action,
            type=job_type,
            status=status,
            older_than_s=older_than_s,
            limit=limit,
            page_token=token,
        )
        matched, changed, calls = matched + page.matched, changed + page.changed, calls + 1
        if not settings.output.as_json and page.next_page_token:
            click.echo(f"... {matched} examined, {changed} {_DONE[action]}", err=True)
        token = page.next_page_token
        if not token:
            break
    _report(settings, action, BulkTotals(matched, changed, calls))


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
def bulk(
    settings: Settings,
    action: str,
    job_type: str | None,
    status: str | None,
    older_than_s: float | None,
    limit: int,
    yes: bool,
) -> None:
    """Retry, cancel or delete every job matching the filter, a bounded page at a time.

    A job the action does not apply to (retrying a completed job) is counted, not changed.
    """
    _run(settings, BulkAction(action.lower()), job_type, status, older_than_s, limit, yes)


@click.command()
@_filter_options
@json_flag
@pass_settings
def purge(
    settings: Settings,
    job_type: str | None,
    status: str | None,
    older_than_s: float | None,
    limit: int,
    yes: bool,
) -> None:
    """Delete the finished jobs matching the filter (`bulk delete`), e.g. --older-than 7d."""
    _run(settings, BulkAction.DELETE, job_type, status, older_than_s, limit, yes)

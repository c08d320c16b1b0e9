"""``jobqueue pause TYPE`` / ``jobqueue resume TYPE``: stop and restart handing out a job type."""

from __future__ import annotations

import click

from ._cli_settings import Settings, json_flag, pass_settings


def _report(settings: Settings, job_type: str, paused: bool, changed: bool) -> None:
    output = settings.output
    if output.as_json:
        output.json_line({"type": job_type, "paused": paused, "changed": changed})
        return
    state = "paused" if paused else "resumed"
    already = "" if changed else " (it already was)" if paused else " (it was not paused)"
    output.message(f"{job_type}: {state}{already}")


@click.command()
@click.argument("job_type", metavar="TYPE")
@json_flag
@pass_settings
def pause(settings: Settings, job_type: str) -> None:
    """Stop handing out jobs of TYPE to every worker, until `jobqueue resume`.

    Its jobs stay pending and producers can still enqueue; running jobs finish.
    """
    _report(settings, job_type, True, settings.connect().pause_type(job_type))


@click.command()
@click.argument("job_type", metavar="TYPE")
@json_flag
@pass_settings
def resume(settings: Settings, job_type: str) -> None:
    """Hand out jobs of a paused TYPE again."""
    _report(settings, job_type, False, settings.connect().resume_type(job_type))

"""``jobqueue``: submit, inspect, cancel and follow jobs from the terminal.

Every failure is one line on stderr and a distinct exit code (see ``EXIT_CODES``
and ``jobqueue --help``), so scripts can tell bad input from a missing job
from a server that is down. ``--json`` makes every command print JSON: one
object, or one object per line for listings and followed states.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from ._channel import DEFAULT_TARGET, DEFAULT_TIMEOUT_S, TARGET_ENV
from ._cli_admin import bulk, delete, purge, retry
from ._cli_gates import limits, pause, resume
from ._cli_input import duration_option
from ._cli_output import Output, escaped, shown_status
from ._cli_presence import workers
from ._cli_schedules import schedules
from ._cli_settings import EXIT_JOB_UNSUCCESSFUL, Settings, follow, json_flag, pass_settings
from ._cli_submit import submit
from ._cli_worker import WorkerMissing, worker
from ._errors import (
    InvalidJob,
    JobAlreadyFinished,
    JobNotFound,
    JobQueueClientError,
    PermissionDenied,
    QueueFull,
    ServerUnavailable,
    Unauthenticated,
    WaitTimeout,
)
from ._models import JobStatus

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_FINISHED = 4
EXIT_UNAVAILABLE = 5
EXIT_UNAUTHENTICATED = 6
EXIT_QUEUE_FULL = 7
EXIT_TIMEOUT = 8
EXIT_INTERRUPTED = 130

EXIT_CODES: list[tuple[type[Exception], int]] = [
    # Most specific first: WaitTimeout is a TimeoutError, DeadlineExceeded a ServerUnavailable.
    (WaitTimeout, EXIT_TIMEOUT),
    (InvalidJob, EXIT_USAGE),
    (JobNotFound, EXIT_NOT_FOUND),
    (JobAlreadyFinished, EXIT_FINISHED),
    (ServerUnavailable, EXIT_UNAVAILABLE),
    (Unauthenticated, EXIT_UNAUTHENTICATED),
    (PermissionDenied, EXIT_UNAUTHENTICATED),
    (QueueFull, EXIT_QUEUE_FULL),
    (JobQueueClientError, EXIT_ERROR),
]
"""The one table from client errors to exit codes."""

_EPILOG = f"""\b
Exit codes:
  {EXIT_OK}  success
  {EXIT_ERROR}  other server error (also a unique key held, with --on-conflict reject)
  {EXIT_USAGE}  bad input or usage (the server rejected the job, or a flag is wrong)
  {EXIT_NOT_FOUND}  job or schedule not found
  {EXIT_FINISHED}  job in the wrong state for the action (cancel, retry, delete)
  {EXIT_UNAVAILABLE}  server unavailable or too slow
  {EXIT_UNAUTHENTICATED}  not authenticated or not allowed
  {EXIT_QUEUE_FULL}  queue full
  {EXIT_TIMEOUT}  watch/--wait timed out
  {EXIT_JOB_UNSUCCESSFUL}  the followed job ended FAILED or CANCELLED
"""

SCHEDULED = "scheduled"
_STATUS_NAMES = [status.value for status in JobStatus] + [SCHEDULED]
_SPLIT = {JobStatus.PENDING.value, SCHEDULED}
_AUTH_HINT = "give the server's token with --token or JOBQUEUE_AUTH_TOKEN"


@click.group(epilog=_EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--server",
    envvar=TARGET_ENV,
    default=DEFAULT_TARGET,
    show_default=True,
    metavar="ADDRESS",
    help=(
        f"The jobqueue server (env {TARGET_ENV}): host[:port] (port 8080 when omitted), "
        "http://host:port (plaintext) or https://host[:port] (TLS)."
    ),
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (JSON lines for listings).")
@click.option(
    "--token",
    envvar="JOBQUEUE_AUTH_TOKEN",
    metavar="TOKEN",
    help="Bearer token, if the server requires one (env JOBQUEUE_AUTH_TOKEN).",
)
@click.option(
    "--timeout-s",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_TIMEOUT_S,
    show_default=True,
    help="Deadline of each call, in seconds.",
)
@click.option(
    "--timeout",
    "old_timeout",
    type=click.FloatRange(min=0, min_open=True),
    hidden=True,
    help="Deprecated name of --timeout-s.",
)
@click.option("--tls", is_flag=True, help="Connect with TLS (system root certificates).")
@click.option(
    "--ca-cert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="PEM root certificates to trust (implies --tls).",
)
@click.option(
    "--client-cert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="PEM client certificate, for servers that require mutual TLS.",
)
@click.option(
    "--client-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="PEM private key of --client-cert.",
)
@click.version_option(package_name="jobqueue-client", prog_name="jobqueue")
@click.pass_context
def cli(
    ctx: click.Context,
    server: str,
    as_json: bool,
    token: str | None,
    timeout_s: float,
    old_timeout: float | None,
    tls: bool,
    ca_cert: Path | None,
    client_cert: Path | None,
    client_key: Path | None,
) -> None:
    """Submit, inspect, cancel and follow jobqueue jobs."""
    if (client_cert is None) != (client_key is None):
        raise click.UsageError("--client-cert and --client-key go together")
    if old_timeout is not None:
        # Durations carry their unit in their name; the old flag works a while longer.
        click.echo("jobqueue: warning: --timeout is deprecated; use --timeout-s", err=True)
        timeout_s = old_timeout
    settings = Settings(
        server=server,
        token=token,
        timeout_s=timeout_s,
        tls=tls,
        ca_cert=ca_cert,
        client_cert=client_cert,
        client_key=client_key,
        output=Output(as_json=as_json),
    )
    ctx.obj = settings
    ctx.call_on_close(settings.close)


@cli.command()
@click.argument("job_id", metavar="ID")
@json_flag
@pass_settings
def get(settings: Settings, job_id: str) -> None:
    """Show a job (a PENDING job due later shows as SCHEDULED)."""
    settings.output.job(settings.connect().get(job_id))


@cli.command()
@click.argument("job_id", metavar="ID")
@json_flag
@pass_settings
def cancel(settings: Settings, job_id: str) -> None:
    """Cancel a pending job, or ask the worker running it to stop."""
    job = settings.connect().cancel(job_id)
    if job.status is JobStatus.RUNNING:
        # Not cancelled yet: its worker was told, and the job ends when the handler stops.
        settings.output.message(
            f"cancel requested: job {job.id} is running; its worker was told to stop it"
        )
    settings.output.job(job)


@cli.command(name="list")
@click.option("--type", "job_type", help="Only jobs of this type.")
@click.option(
    "--status",
    type=click.Choice(_STATUS_NAMES, case_sensitive=False),
    help="Only this status; pending means due now, scheduled due later (as in stats).",
)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=100,
    show_default=True,
    help="At most this many jobs (0: all).",
)
@json_flag
@pass_settings
def list_jobs(settings: Settings, job_type: str | None, status: str | None, limit: int) -> None:
    """List jobs, optionally of one type and status."""
    wanted = status.lower() if status else None
    jobs = settings.connect().list(
        job_type,
        JobStatus.PENDING.value if wanted == SCHEDULED else wanted,
        page_size=min(limit, 1_000) if limit else 1_000,  # the server caps it at its own limit
        # PENDING splits into due now and due later here, so the limit counts after that.
        limit=None if wanted in _SPLIT else limit or None,
    )
    if wanted in _SPLIT:
        jobs = itertools.islice((job for job in jobs if shown_status(job) == wanted), limit or None)
    shown = settings.output.jobs(jobs)
    if limit and shown == limit:
        settings.output.message(
            f"stopped at --limit {limit}; --limit 0 lists every job", style="dim"
        )


@cli.command()
@json_flag
@pass_settings
def stats(settings: Settings) -> None:
    """Count jobs per type and status (scheduled: PENDING and due later).

    Also how long each type's oldest due job has waited and its live workers;
    a type with due jobs and no live worker is flagged: nothing will run them.
    """
    settings.output.stats(settings.connect().stats())


@cli.command()
@click.argument("job_id", metavar="ID")
@click.option(
    "--timeout",
    "wait_timeout",
    callback=duration_option,
    metavar="DURATION",
    help="Give up after this long.",
)
@json_flag
@pass_settings
def watch(settings: Settings, job_id: str, wait_timeout: float | None) -> None:
    """Follow a job live until it finishes, printing each state.

    Exits 0 when the job COMPLETED and 9 when it ended FAILED or CANCELLED.
    """
    follow(settings, job_id, wait_timeout)


cli.add_command(submit)
cli.add_command(worker)
cli.add_command(schedules)
cli.add_command(pause)
cli.add_command(resume)
cli.add_command(limits)
cli.add_command(workers)
cli.add_command(retry)
cli.add_command(delete)
cli.add_command(purge)
cli.add_command(bulk)


def exit_code_for(error: Exception) -> int:
    for cls, code in EXIT_CODES:
        if isinstance(error, cls):
            return code
    return EXIT_ERROR


def _fail(message: str, code: int) -> int:
    # One line, whatever the message held: scripts and people read the first line.
    # A server's message may quote what a client sent: its control characters are shown, not obeyed.
    flat = escaped(" ".join(message.split()))
    click.echo(f"jobqueue: error: {flat}", err=True)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """The ``jobqueue`` console script; returns the exit code."""
    try:
        result: Any = cli.main(
            args=list(argv) if argv is not None else None,
            prog_name="jobqueue",
            standalone_mode=False,
        )
    except click.exceptions.Exit as done:
        return done.exit_code
    except click.UsageError as error:
        hint = ""
        if error.ctx is not None:
            hint = f" (see '{error.ctx.command_path} --help')"
        return _fail(error.format_message() + hint, EXIT_USAGE)
    except WorkerMissing as error:  # not the user's input: the environment lacks a package
        return _fail(error.format_message(), EXIT_ERROR)
    except click.ClickException as error:  # e.g. an unreadable --file
        return _fail(error.format_message(), EXIT_USAGE)
    except click.Abort:
        return _fail("interrupted", EXIT_INTERRUPTED)
    except (Unauthenticated, PermissionDenied) as error:
        return _fail(f"{error.message} ({_AUTH_HINT})", exit_code_for(error))
    except JobQueueClientError as error:
        return _fail(error.message, exit_code_for(error))
    except (ValueError, TypeError) as error:
        # Arguments the SDK refused before sending (a payload that is not JSON-able).
        return _fail(str(error), EXIT_USAGE)
    except OSError as error:
        return _fail(str(error), EXIT_ERROR)
    return result if isinstance(result, int) else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

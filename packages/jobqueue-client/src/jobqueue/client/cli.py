"""``jobqueue``: submit, inspect, cancel and follow jobs from the terminal.

Every failure is one line on stderr and a distinct exit code (see ``EXIT_CODES``
and ``jobqueue --help``), so scripts can tell bad input from a missing job
from a server that is down. ``--json`` makes every command print JSON: one
object, or one object per line for listings and followed states.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ._channel import DEFAULT_TARGET, DEFAULT_TIMEOUT_S, TARGET_ENV
from ._cli_input import BadJobLine, duration_option, read_job_lines, time_option
from ._cli_output import Output
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
from ._models import Job, JobSpec, JobStatus
from ._sync_client import JobClient

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_FINISHED = 4
EXIT_UNAVAILABLE = 5
EXIT_UNAUTHENTICATED = 6
EXIT_QUEUE_FULL = 7
EXIT_TIMEOUT = 8
EXIT_JOB_UNSUCCESSFUL = 9
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
  {EXIT_ERROR}  other server error
  {EXIT_USAGE}  bad input or usage (the server rejected the job, or a flag is wrong)
  {EXIT_NOT_FOUND}  job not found
  {EXIT_FINISHED}  job already finished (cancel)
  {EXIT_UNAVAILABLE}  server unavailable or too slow
  {EXIT_UNAUTHENTICATED}  not authenticated or not allowed
  {EXIT_QUEUE_FULL}  queue full
  {EXIT_TIMEOUT}  watch/--wait timed out
  {EXIT_JOB_UNSUCCESSFUL}  the followed job ended FAILED or CANCELLED
"""

_STATUS_NAMES = [status.value for status in JobStatus]


@dataclass
class _Settings:
    """The global options, and the client made from them on first use."""

    server: str
    token: str | None
    timeout: float
    tls: bool
    ca_cert: Path | None
    client_cert: Path | None
    client_key: Path | None
    output: Output
    client: JobClient | None = field(default=None)

    def connect(self) -> JobClient:
        if self.client is None:
            self.client = JobClient(
                target=self.server,
                timeout=self.timeout,
                tls=self.tls,
                ca_cert=self.ca_cert,
                client_cert=self.client_cert,
                client_key=self.client_key,
                auth_token=self.token,
            )
        return self.client

    def close(self) -> None:
        if self.client is not None:
            self.client.close()


@click.group(epilog=_EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--server",
    envvar=TARGET_ENV,
    default=DEFAULT_TARGET,
    show_default=True,
    metavar="HOST:PORT",
    help=f"The jobqueue server (env {TARGET_ENV}).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (JSON lines for listings).")
@click.option(
    "--token",
    envvar="JOBQUEUE_AUTH_TOKEN",
    metavar="TOKEN",
    help="Bearer token, if the server requires one (env JOBQUEUE_AUTH_TOKEN).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_TIMEOUT_S,
    show_default=True,
    help="Deadline of each call, in seconds.",
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
    timeout: float,
    tls: bool,
    ca_cert: Path | None,
    client_cert: Path | None,
    client_key: Path | None,
) -> None:
    """Submit, inspect, cancel and follow jobqueue jobs."""
    if (client_cert is None) != (client_key is None):
        raise click.UsageError("--client-cert and --client-key go together")
    settings = _Settings(
        server=server,
        token=token,
        timeout=timeout,
        tls=tls,
        ca_cert=ca_cert,
        client_cert=client_cert,
        client_key=client_key,
        output=Output(as_json=as_json),
    )
    ctx.obj = settings
    ctx.call_on_close(settings.close)


pass_settings = click.make_pass_decorator(_Settings)


@cli.command()
@click.argument("job_type", metavar="TYPE", required=False)
@click.argument("payload", required=False)
@click.option(
    "--at",
    "run_at",
    callback=time_option,
    metavar="TIME",
    help="When it is due: ISO 8601 or epoch ms.",
)
@click.option(
    "--in",
    "delay",
    callback=duration_option,
    metavar="DURATION",
    help="Or how long from now: 30s, 5m, 1h30m.",
)
@click.option("--max-attempts", type=click.IntRange(min=1), help="Runs before it ends FAILED.")
@click.option("--key", "idempotency_key", help="Idempotency key: resubmitting it is a no-op.")
@click.option("--wait", is_flag=True, help="Follow the job until it finishes.")
@click.option(
    "--wait-timeout",
    callback=duration_option,
    metavar="DURATION",
    help="Give up waiting after this long (with --wait).",
)
@click.option(
    "--file",
    "jobs_file",
    type=click.File("r", encoding="utf-8"),
    help="Submit every job of a JSON-lines file ('-': stdin) instead.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1, max=10_000),
    default=500,
    show_default=True,
    help="Jobs per call with --file.",
)
@pass_settings
def submit(
    settings: _Settings,
    job_type: str | None,
    payload: str | None,
    run_at: datetime | int | None,
    delay: float | None,
    max_attempts: int | None,
    idempotency_key: str | None,
    wait: bool,
    wait_timeout: float | None,
    jobs_file: IO[str] | None,
    batch_size: int,
) -> None:
    """Submit a job of TYPE with an optional PAYLOAD (sent as text), or a file of jobs.

    \b
    Examples:
      jobqueue submit send_email '{"to": "a@example.com"}' --in 5m
      jobqueue submit report --at 2030-01-31T09:00:00Z --max-attempts 3 --wait
      jobqueue submit --file jobs.jsonl

    Each line of a jobs file is a JSON object: {"type": "send_email", "payload":
    {...}, "delay": "30s", "max_attempts": 3, "key": "..."}; "run_at" takes ISO
    8601 or epoch ms. The whole file is checked before anything is sent.
    """
    if jobs_file is not None:
        extras = [
            name
            for name, value in (
                ("TYPE", job_type),
                ("PAYLOAD", payload),
                ("--at", run_at),
                ("--in", delay),
                ("--max-attempts", max_attempts),
                ("--key", idempotency_key),
                ("--wait", wait or None),
            )
            if value is not None
        ]
        if extras:
            raise click.UsageError(f"--file cannot be combined with {', '.join(extras)}")
        _submit_file(settings, jobs_file, batch_size)
        return
    if job_type is None:
        raise click.UsageError("give a job TYPE, or --file")
    if run_at is not None and delay is not None:
        raise click.UsageError("give --at or --in, not both")
    job = settings.connect().enqueue(
        job_type,
        payload,
        run_at=run_at,
        delay=delay,
        max_attempts=max_attempts,
        idempotency_key=idempotency_key,
    )
    if not wait:
        settings.output.job(job)
        return
    _follow(settings, job.id, wait_timeout)


def _submit_file(settings: _Settings, jobs_file: IO[str], batch_size: int) -> None:
    name = getattr(jobs_file, "name", "<file>")
    try:
        numbered = list(read_job_lines(jobs_file, source=str(name)))
    except BadJobLine as error:
        raise click.UsageError(str(error)) from None
    client = settings.connect()
    output = settings.output
    stderr = Console(stderr=True)
    progress = Progress(
        TextColumn("submitting"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr,
        transient=True,
        # A bar is for people watching; piped stderr gets no stray lines.
        disable=not stderr.is_terminal,
    )
    submitted = 0
    with progress:
        task = progress.add_task("submit", total=len(numbered))
        for start in range(0, len(numbered), batch_size):
            batch = numbered[start : start + batch_size]
            try:
                jobs = client.enqueue_many([spec for _, spec in batch])
            except InvalidJob as error:
                raise InvalidJob(
                    _locate(error.message, batch, str(name)), code=error.code
                ) from None
            submitted += len(jobs)
            progress.advance(task, len(jobs))
            if output.as_json:
                for job in jobs:
                    output.json_line(job.to_dict())
    output.message(f"submitted {submitted} job{'s' if submitted != 1 else ''} from {name}")


def _locate(message: str, batch: Sequence[tuple[int, JobSpec]], source: str) -> str:
    """The server names a rejected job by its index in the batch; name its line instead."""
    found = re.match(r"jobs\[(\d+)\]\.(.*)", message, re.DOTALL)
    if found is None or int(found.group(1)) >= len(batch):
        return f"{source}: {message}"
    line, _ = batch[int(found.group(1))]
    return f"{source}:{line}: {found.group(2)}"


@cli.command()
@click.argument("job_id", metavar="ID")
@pass_settings
def get(settings: _Settings, job_id: str) -> None:
    """Show a job."""
    settings.output.job(settings.connect().get(job_id))


@cli.command()
@click.argument("job_id", metavar="ID")
@pass_settings
def cancel(settings: _Settings, job_id: str) -> None:
    """Cancel a pending job, or ask the worker running it to stop."""
    job = settings.connect().cancel(job_id)
    settings.output.job(job)


@cli.command(name="list")
@click.option("--type", "job_type", help="Only jobs of this type.")
@click.option(
    "--status", type=click.Choice(_STATUS_NAMES, case_sensitive=False), help="Only this status."
)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=100,
    show_default=True,
    help="At most this many jobs (0: all).",
)
@pass_settings
def list_jobs(settings: _Settings, job_type: str | None, status: str | None, limit: int) -> None:
    """List jobs, optionally of one type and status."""
    jobs = settings.connect().list(
        job_type,
        status.lower() if status else None,
        page_size=min(limit, 500) if limit else 500,
        limit=limit or None,
    )
    shown = settings.output.jobs(jobs)
    if limit and shown == limit:
        settings.output.message(f"[dim]stopped at --limit {limit}; --limit 0 lists every job[/dim]")


@cli.command()
@pass_settings
def stats(settings: _Settings) -> None:
    """Count jobs per type and status."""
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
@pass_settings
def watch(settings: _Settings, job_id: str, wait_timeout: float | None) -> None:
    """Follow a job live until it finishes, printing each state.

    Exits 0 when the job COMPLETED and 9 when it ended FAILED or CANCELLED.
    """
    _follow(settings, job_id, wait_timeout)


def _follow(settings: _Settings, job_id: str, timeout: float | None) -> None:
    last: Job | None = None
    for job in settings.connect().watch(job_id, timeout=timeout):
        settings.output.state(job)
        last = job
    if last is not None and last.status is not JobStatus.COMPLETED:
        raise click.exceptions.Exit(EXIT_JOB_UNSUCCESSFUL)


def exit_code_for(error: Exception) -> int:
    for cls, code in EXIT_CODES:
        if isinstance(error, cls):
            return code
    return EXIT_ERROR


def _fail(message: str, code: int) -> int:
    # One line, whatever the message held: scripts and people read the first line.
    flat = " ".join(message.split())
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
    except click.ClickException as error:  # e.g. an unreadable --file
        return _fail(error.format_message(), EXIT_USAGE)
    except click.Abort:
        return _fail("interrupted", EXIT_INTERRUPTED)
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

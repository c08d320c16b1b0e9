"""``jobqueue submit``: one job from the arguments, or every job of a JSON-lines file."""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import IO

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ._cli_input import (
    BadJobLine,
    JobLine,
    batch_key,
    duration_option,
    parse_duration,
    read_job_lines,
    read_payload,
    time_option,
)
from ._cli_output import job_json
from ._cli_settings import Settings, follow, json_flag, pass_settings
from ._errors import InvalidJob
from ._models import Job


@click.command()
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
    "delay_s",
    callback=duration_option,
    metavar="DURATION",
    help="Or how long from now: 30s, 5m, 1h30m.",
)
@click.option("--max-attempts", type=click.IntRange(min=1), help="Runs before it ends FAILED.")
@click.option("--key", "idempotency_key", help="Idempotency key: resubmitting it is a no-op.")
@click.option(
    "--priority",
    type=click.IntRange(-100, 100),
    help="-100 to 100 (0 by default): due jobs of a type run highest priority first.",
)
@click.option(
    "--limit-key",
    help="A tenant such as a customer id: TYPE's per-key limits count each key apart, "
    "and keys take turns.",
)
@click.option(
    "--unique-key",
    help="Unique key: while a job holding it is pending (or running), another submit "
    "with it gets --on-conflict.",
)
@click.option(
    "--on-conflict",
    type=click.Choice(["return_existing", "reject", "replace"]),
    help="With --unique-key: return the holder (default), reject (exit 1, naming the "
    "holder), or replace a pending holder.",
)
@click.option(
    "--unique-for",
    metavar="pending|active|DURATION",
    help="With --unique-key: until the holder is claimed, finished (active, the default), "
    "or a debounce window such as 30s.",
)
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
    help="Jobs per call with --file (keep it when re-running a file).",
)
@json_flag
@pass_settings
def submit(
    settings: Settings,
    job_type: str | None,
    payload: str | None,
    run_at: datetime | int | None,
    delay_s: float | None,
    max_attempts: int | None,
    idempotency_key: str | None,
    priority: int | None,
    limit_key: str | None,
    unique_key: str | None,
    on_conflict: str | None,
    unique_for: str | None,
    wait: bool,
    wait_timeout: float | None,
    jobs_file: IO[str] | None,
    batch_size: int,
) -> None:
    """Submit a job of TYPE with an optional PAYLOAD, or a file of jobs.

    PAYLOAD is sent as text; '-' reads it from stdin and '@path' from a file,
    sent as the bytes read.

    \b
    Examples:
      jobqueue submit send_email '{"to": "a@example.com"}' --in 5m
      jobqueue submit report @report.json --at 2030-01-31T09:00:00Z --wait
      jobqueue submit --file jobs.jsonl

    Each line of a jobs file is a JSON object: {"type": "send_email", "payload":
    {...}, "delay": "30s", "max_attempts": 3, "key": "...", "priority": 5, "limit_key": "acme"};
    "run_at" takes ISO
    8601 or epoch ms. The whole file is checked before anything is sent, and
    running the same file again stores nothing twice: each batch's idempotency
    key comes from its lines.
    """
    if jobs_file is not None:
        extras = [
            name
            for name, value in (
                ("TYPE", job_type),
                ("PAYLOAD", payload),
                ("--at", run_at),
                ("--in", delay_s),
                ("--max-attempts", max_attempts),
                ("--key", idempotency_key),
                ("--priority", priority),
                ("--limit-key", limit_key),
                ("--unique-key", unique_key),
                ("--on-conflict", on_conflict),
                ("--unique-for", unique_for),
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
    if run_at is not None and delay_s is not None:
        raise click.UsageError("give --at or --in, not both")
    job = settings.connect().enqueue(
        job_type,
        read_payload(payload, sys.stdin.buffer),
        run_at=run_at,
        delay_s=delay_s,
        max_attempts=max_attempts,
        idempotency_key=idempotency_key,
        priority=priority or 0,
        limit_key=limit_key,
        unique_key=unique_key,
        on_conflict=on_conflict,
        unique_for=_unique_for(unique_for),
    )
    if not wait:
        settings.output.job(job)
        return
    # The id first: whoever stops waiting (Ctrl-C, a timeout) can still find the job.
    settings.output.message(f"submitted job {job.id}")
    follow(settings, job.id, wait_timeout)


def _unique_for(value: str | None) -> str | timedelta | None:
    """``pending``/``active`` as they are; anything else is a debounce window (``30s``)."""
    if value is None or value in ("pending", "active"):
        return value
    try:
        return timedelta(seconds=parse_duration(value))
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--unique-for") from None


def _submit_file(settings: Settings, jobs_file: IO[str], batch_size: int) -> None:
    name = str(getattr(jobs_file, "name", "<file>"))
    try:
        lines = list(read_job_lines(jobs_file, source=name))
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
        task = progress.add_task("submit", total=len(lines))
        for start in range(0, len(lines), batch_size):
            batch = lines[start : start + batch_size]
            try:
                jobs = client.enqueue_many(
                    [line.spec for line in batch], idempotency_key=batch_key(batch)
                )
            except InvalidJob as error:
                message = _rejected(error.message, batch, name, submitted)
                raise InvalidJob(message, code=error.code) from None
            submitted += len(jobs)
            progress.advance(task, len(jobs))
            _print_jobs(settings, jobs)
    output.message(f"submitted {submitted} job{'s' if submitted != 1 else ''} from {name}")


def _print_jobs(settings: Settings, jobs: Sequence[Job]) -> None:
    if settings.output.as_json:
        for job in jobs:
            settings.output.json_line(job_json(job))


def _rejected(message: str, batch: Sequence[JobLine], source: str, stored: int) -> str:
    """The server names a rejected job by its index in the batch; name its line instead.

    The rejected batch stored nothing; the batches before it did, and say so:
    running the fixed file again stores only what is new.
    """
    found = re.match(r"jobs\[(\d+)\]\.(.*)", message, re.DOTALL)
    where = f"{source}: {message}"
    if found is not None and int(found.group(1)) < len(batch):
        where = f"{source}:{batch[int(found.group(1))].number}: {found.group(2)}"
    if not stored:
        return f"{where} (nothing was stored)"
    return (
        f"{where} ({stored} jobs of the lines before it were stored; fix the line and run "
        "the same command again: they are not stored twice)"
    )

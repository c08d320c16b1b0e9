"""What every ``jobqueue`` command shares: the global options and the client made from them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import click

from ._cli_output import Output
from ._models import Job, JobStatus
from ._sync_client import JobClient

F = TypeVar("F", bound=Callable[..., Any])

EXIT_JOB_UNSUCCESSFUL = 9


@dataclass
class Settings:
    """The global options, and the client made from them on first use."""

    server: str
    token: str | None
    timeout_s: float
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
                timeout_s=self.timeout_s,
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


pass_settings = click.make_pass_decorator(Settings)


def _json_after_command(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    # The group's callback has run by now: the subcommand's options are parsed after it.
    settings = ctx.find_object(Settings)
    if value and settings is not None:
        settings.output.as_json = True


def json_flag(command: F) -> F:
    """``--json`` after the command's name too (``jobqueue stats --json``), as people type it."""
    return click.option(
        "--json",
        is_flag=True,
        expose_value=False,
        callback=_json_after_command,
        help="Print JSON (JSON lines for listings); same as the global --json.",
    )(command)


def follow(settings: Settings, job_id: str, timeout_s: float | None) -> None:
    """Print each state of the job until it finishes; exit 9 unless it COMPLETED."""
    last: Job | None = None
    for job in settings.connect().watch(job_id, timeout_s=timeout_s):
        settings.output.state(job)
        last = job
    if last is not None and last.status is not JobStatus.COMPLETED:
        raise click.exceptions.Exit(EXIT_JOB_UNSUCCESSFUL)

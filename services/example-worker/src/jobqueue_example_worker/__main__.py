"""``jobqueue-example-worker``: the worker command (``run_command``) on the example handlers."""

from __future__ import annotations

import sys
from typing import Any, Literal

import click
from pydantic import ValidationError

from jobqueue.worker import run_command

from ._bootstrap import command_args
from ._settings import ExampleWorkerSettings


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--redis-url", help="Take jobs from Redis directly [env JOBQUEUE_REDIS_URL].")
@click.option("--server", help="host:port of the server, when no Redis URL [env JOBQUEUE_SERVER].")
@click.option("--key-prefix", help="Redis key prefix [env JOBQUEUE_KEY_PREFIX].")
@click.option(
    "--concurrency", type=click.IntRange(1), help="Jobs in flight [env JOBQUEUE_CONCURRENCY]."
)
@click.option("--log-level", help="DEBUG logs every job start and finish [env JOBQUEUE_LOG_LEVEL].")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    help="Text lines or JSON objects [env JOBQUEUE_LOG_FORMAT].",
)
def main(
    redis_url: str | None,
    server: str | None,
    key_prefix: str | None,
    concurrency: int | None,
    log_level: str | None,
    log_format: Literal["text", "json"] | None,
) -> None:
    """Run the example worker: handlers send_email, flaky and slow.

    The settings are read as the server reads its own (``JOBQUEUE_*``), then
    handed to the SDK's worker command, which runs ``jobqueue_example_worker:worker``.
    """
    overrides: dict[str, Any] = {
        name: value
        for name, value in {
            "redis_url": redis_url,
            "server": server,
            "key_prefix": key_prefix,
            "concurrency": concurrency,
            "log_level": log_level,
            "log_format": log_format,
        }.items()
        if value is not None
    }
    try:
        settings = ExampleWorkerSettings(**overrides)
    except ValidationError as error:
        # One line naming the variable, as the server and the worker command say it.
        raise click.UsageError(
            "; ".join(
                f"JOBQUEUE_{'.'.join(str(part) for part in item['loc']).upper()}: {item['msg']}"
                for item in error.errors()
            )
        ) from None
    sys.exit(run_command(command_args(settings)))


if __name__ == "__main__":
    main()

"""``jobqueue-example-worker``: run the example handlers until SIGTERM or SIGINT."""

from __future__ import annotations

import logging
from typing import Any

import click

from ._bootstrap import build_worker, configure_logging
from ._settings import ExampleWorkerSettings


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--redis-url", help="Take jobs from Redis directly [env JOBQUEUE_REDIS_URL].")
@click.option("--server", help="host:port of the server, when no Redis URL [env JOBQUEUE_SERVER].")
@click.option("--key-prefix", help="Redis key prefix [env JOBQUEUE_KEY_PREFIX].")
@click.option(
    "--concurrency", type=click.IntRange(1), help="Jobs in flight [env JOBQUEUE_CONCURRENCY]."
)
@click.option("--log-level", help="DEBUG logs every job start and finish [env JOBQUEUE_LOG_LEVEL].")
def main(
    redis_url: str | None,
    server: str | None,
    key_prefix: str | None,
    concurrency: int | None,
    log_level: str | None,
) -> None:
    """Run the example worker: handlers send_email, flaky and slow."""
    overrides: dict[str, Any] = {
        name: value
        for name, value in {
            "redis_url": redis_url,
            "server": server,
            "key_prefix": key_prefix,
            "concurrency": concurrency,
            "log_level": log_level,
        }.items()
        if value is not None
    }
    settings = ExampleWorkerSettings(**overrides)
    configure_logging(settings.log_level)
    path = f"redis {settings.key_prefix!r}" if settings.redis_url else f"server {settings.server}"
    logging.getLogger("jobqueue_example_worker").info("taking jobs from %s", path)
    build_worker(settings).run()


if __name__ == "__main__":
    main()

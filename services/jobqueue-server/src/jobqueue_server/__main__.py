"""``jobqueue-server``: the command line. Flags override ``JOBQUEUE_*`` environment variables."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from dependency_injector import providers
from pydantic import ValidationError

from jobqueue.dashboard import DashboardSettings
from jobqueue.redis import ShardLayoutMismatch

from ._app import AddressUnavailable, App
from .containers import Container
from .settings import EventLoop, ServerSettings


def _one_line(error: ValidationError) -> str:
    """Pydantic's report as one line naming each setting by its variable.

    A rule over several settings (its location is empty) names them itself.
    """
    found = []
    for item in error.errors():
        message = item["msg"].removeprefix("Value error, ")
        field = ".".join(str(part) for part in item["loc"])
        found.append(f"{_variable(field)}: {message}" if field else message)
    return "; ".join(found)


def _variable(field: str) -> str:
    """The environment variable of a ServerSettings field (its alias, if it has one)."""
    info = ServerSettings.model_fields.get(field)
    choices = getattr(info.validation_alias, "choices", None) if info is not None else None
    if choices:
        return str(choices[0])
    return f"JOBQUEUE_{field.upper()}"


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--host", help="Address to bind [env JOBQUEUE_HOST; default 0.0.0.0].")
@click.option(
    "--port",
    type=int,
    help="Port of gRPC, Connect, gRPC-Web, /healthz and /metrics [env JOBQUEUE_PORT; 8080].",
)
@click.option(
    "--wire",
    type=click.Choice(["http", "grpcio"]),
    help="http: every protocol on one port; grpcio: gRPC alone [env JOBQUEUE_WIRE; http].",
)
@click.option(
    "--redis-url",
    help="Redis URL [env JOBQUEUE_REDIS_URL, or REDIS_ADDR=host:port]; unset: the in-memory store.",
)
@click.option("--key-prefix", help="Namespace of Redis keys [env JOBQUEUE_KEY_PREFIX; jq].")
@click.option(
    "--retention-ms",
    type=int,
    help="How long finished jobs stay readable, in ms [env JOBQUEUE_RETENTION_MS; 86400000].",
)
@click.option("--retention-seconds", type=int, hidden=True, help="Deprecated: --retention-ms.")
@click.option(
    "--max-payload-bytes",
    type=int,
    help="Largest job payload [env JOBQUEUE_MAX_PAYLOAD_BYTES; 1048576].",
)
@click.option(
    "--max-message-bytes",
    type=int,
    help="Largest gRPC message [env JOBQUEUE_MAX_MESSAGE_BYTES; 67108864].",
)
@click.option(
    "--shutdown-grace-s",
    type=float,
    help="Seconds calls in flight get on SIGTERM [env JOBQUEUE_SHUTDOWN_GRACE_S; 10].",
)
@click.option(
    "--shutdown-grace-seconds", type=float, hidden=True, help="Deprecated: --shutdown-grace-s."
)
@click.option("--metrics-port", type=int, help="Prometheus port [env JOBQUEUE_METRICS_PORT].")
@click.option("--log-level", help="Log level [env JOBQUEUE_LOG_LEVEL; INFO].")
@click.option(
    "--event-loop",
    type=click.Choice(["auto", "uvloop", "asyncio"]),
    help="Event loop [env JOBQUEUE_EVENT_LOOP; auto: uvloop where installed].",
)
@click.option(
    "--auth-token-file",
    type=click.Path(path_type=Path),
    help="File of accepted bearer tokens [env JOBQUEUE_AUTH_TOKEN_FILE, or the token itself "
    "in JOBQUEUE_AUTH_TOKEN; unset: no authentication].",
)
@click.option(
    "--tls-cert-file",
    type=click.Path(path_type=Path),
    help="PEM certificate chain; serve TLS [env JOBQUEUE_TLS_CERT_FILE].",
)
@click.option(
    "--tls-key-file",
    type=click.Path(path_type=Path),
    help="PEM private key of the certificate [env JOBQUEUE_TLS_KEY_FILE].",
)
@click.option(
    "--tls-client-ca-file",
    type=click.Path(path_type=Path),
    help="PEM CA: require client certificates it signed [env JOBQUEUE_TLS_CLIENT_CA_FILE].",
)
@click.option(
    "--cors-origins",
    help="Origins whose browser apps may call the API, comma-separated, or * "
    "[env JOBQUEUE_CORS_ORIGINS; unset: none].",
)
@click.pass_context
def cli(ctx: click.Context, /, **flags: Any) -> None:
    """Serve the jobqueue API (JobService, WorkerService, health, reflection) on one port.

    gRPC, the Connect protocol (HTTP/1.1 or HTTP/2, binary or JSON) and gRPC-Web.
    With a command (``migrate``), run that instead.
    """
    if ctx.invoked_subcommand is not None:
        return
    overrides = {name: value for name, value in flags.items() if value is not None}
    try:
        settings = ServerSettings(**overrides)
    except ValidationError as error:
        raise click.BadParameter(_one_line(error)) from None
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    container = Container()
    container.settings.override(settings)
    try:
        # Read tokens and certificates now, so a mistake is one clear line.
        # Pinned as read: a Singleton that built None would build (and warn)
        # again on the App's call.
        container.auth.override(providers.Object(container.auth()))
        container.tls.override(providers.Object(container.tls()))
        # The store's and the dashboard's settings too, read by the App once it runs.
        if settings.store_kind == "redis":
            container.redis_settings()
        DashboardSettings.from_env()
    except (OSError, ValueError) as error:
        raise click.ClickException(str(error)) from None
    with asyncio.Runner(loop_factory=loop_factory(settings.event_loop)) as runner:
        try:
            runner.run(_serve(container))
        except (AddressUnavailable, ShardLayoutMismatch) as error:
            raise click.ClickException(str(error)) from None


@cli.command()
@click.option("--redis-url", help="Redis URL [env JOBQUEUE_REDIS_URL, or REDIS_ADDR=host:port].")
@click.option("--key-prefix", help="Namespace of Redis keys [env JOBQUEUE_KEY_PREFIX; jq].")
@click.option(
    "--shards",
    "redis_shards",
    type=click.IntRange(2, 65_535),
    help="Virtual shards to move the queue into [env JOBQUEUE_REDIS_SHARDS].",
)
@click.option("--dry-run", is_flag=True, help="Count what would move; change nothing.")
@click.option(
    "--batch",
    type=click.IntRange(1, 10_000),
    default=500,
    show_default=True,
    help="Jobs moved per step.",
)
def migrate(dry_run: bool, batch: int, **flags: Any) -> None:
    """Move a one-shard queue ({prefix}:...) into virtual shards ({prefix.N}:...).

    Records the new layout first, so processes started afterwards use it;
    restart the ones running, then run this again to move what they still
    enqueued. Safe to stop and re-run: each run moves what is PENDING, and
    RUNNING jobs stay until they settle (run again then). See
    docs/redis-data-model.md, "Moving existing data".
    """
    from jobqueue.domain import StoreUnavailable
    from jobqueue.redis import RedisStoreSettings, ShardLayoutMismatch, migrate_to_shards

    settings, url = _redis_command_settings(flags, "migrate")
    shards = settings.redis_shards
    if shards is None or shards < 2:
        raise click.ClickException("migrating needs --shards N (or JOBQUEUE_REDIS_SHARDS), N > 1")
    store = RedisStoreSettings(url=url, key_prefix=settings.key_prefix, shards=shards)
    try:
        report = asyncio.run(migrate_to_shards(store, batch=batch, dry_run=dry_run))
    except (StoreUnavailable, ShardLayoutMismatch) as error:
        raise click.ClickException(str(error)) from None
    prefix = settings.key_prefix
    if dry_run:
        click.echo(
            f"dry run: {report.moved} pending job(s) of {{{prefix}}} would move into "
            f"{shards} shards; {report.running_left} running job(s) would stay until they settle"
        )
        return
    click.echo(f"moved {report.moved} pending job(s) of {{{prefix}}} into {shards} shards")
    if report.running_left:
        click.echo(
            f"{report.running_left} running job(s) left in the one-shard layout: "
            "run `jobqueue-server migrate` again once they settle"
        )


@cli.command("upgrade-keys")
@click.option("--redis-url", help="Redis URL [env JOBQUEUE_REDIS_URL, or REDIS_ADDR=host:port].")
@click.option("--key-prefix", help="Namespace of Redis keys [env JOBQUEUE_KEY_PREFIX; jq].")
@click.option("--dry-run", is_flag=True, help="Count the keys to move; change nothing.")
def upgrade_keys(dry_run: bool, **flags: Any) -> None:
    """Rename idempotency and unique keys stored before they were per job type.

    k:<key> becomes k:<type>/<key> and u:<key> u:<type>/<key>, each with its
    remaining expiry. Run it once every process of the older release has
    stopped; running it again moves nothing. See docs/redis-data-model.md,
    "Upgrading key names".
    """
    from jobqueue.domain import StoreUnavailable
    from jobqueue.redis import RedisJobStore, RedisStoreSettings, upgrade_key_names

    settings, url = _redis_command_settings(flags, "upgrade")

    async def run() -> str:
        store = RedisJobStore(RedisStoreSettings(url=url, key_prefix=settings.key_prefix))
        try:
            report = await upgrade_key_names(store, dry_run=dry_run)
        finally:
            await store.close()
        verb = "would move" if dry_run else "moved"
        return (
            f"{verb} {report.idempotency_keys} idempotency key(s) and {report.unique_keys} "
            f"unique key(s) of {report.jobs} job(s) to their per-type names"
        )

    try:
        click.echo(asyncio.run(run()))
    except StoreUnavailable as error:
        raise click.ClickException(str(error)) from None


def loop_factory(choice: EventLoop) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop cuts the server's own cost per call by about a fifth (docs/benchmarks.md)."""
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise click.ClickException(
                "JOBQUEUE_EVENT_LOOP=uvloop, but uvloop is not installed"
            ) from None
        return None
    return uvloop.new_event_loop


async def _serve(container: Container) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await App(container).run(stop)


def _redis_command_settings(flags: dict[str, Any], action: str) -> tuple[ServerSettings, str]:
    """The settings of a maintenance command (flags over the environment), and its Redis URL.

    These commands act on stored data, so they refuse to run without a Redis
    rather than on the embedded memory store.
    """
    overrides = {name: value for name, value in flags.items() if value is not None}
    try:
        settings = ServerSettings(**overrides)
    except ValidationError as error:
        raise click.BadParameter(_one_line(error)) from None
    url = settings.effective_redis_url
    if url is None:
        raise click.ClickException(f"no Redis to {action}: set --redis-url or JOBQUEUE_REDIS_URL")
    return settings, url


def main() -> None:
    cli(auto_envvar_prefix=None)


if __name__ == "__main__":
    main()

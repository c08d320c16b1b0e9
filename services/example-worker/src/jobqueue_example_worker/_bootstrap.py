"""The composition root: settings in, a ready source or Worker out. Nothing connects here."""

from __future__ import annotations

from jobqueue.redis import RedisJobStore, RedisStoreSettings
from jobqueue.worker import GrpcSource, JobSource, StoreSource, Worker, WorkerSettings

from ._handlers import register_handlers
from ._settings import ExampleWorkerSettings


def build_source(settings: ExampleWorkerSettings) -> JobSource:
    """Redis directly when ``JOBQUEUE_REDIS_URL`` is set, else the server over gRPC."""
    if settings.redis_url:
        store = RedisJobStore(
            RedisStoreSettings(url=settings.redis_url, key_prefix=settings.key_prefix)
        )
        return StoreSource(store, close_store=True)
    token = settings.auth_token.get_secret_value() if settings.auth_token else None
    return GrpcSource(settings.server, auth_token=token)


def build_worker(settings: ExampleWorkerSettings) -> Worker:
    """A Worker with the example handlers, for embedding in an asyncio application."""
    worker = Worker(
        build_source(settings),
        settings=WorkerSettings(
            concurrency=settings.concurrency,
            lease_ms=settings.lease_ms,
            shutdown_grace_s=settings.shutdown_grace_s,
        ),
    )
    register_handlers(worker)
    return worker


def command_args(settings: ExampleWorkerSettings) -> list[str]:
    """The worker command's arguments that run ``jobqueue_example_worker:worker`` so."""
    args = [
        "jobqueue_example_worker:worker",
        "--concurrency",
        str(settings.concurrency),
        "--lease-ms",
        str(settings.lease_ms),
        "--shutdown-grace-s",
        str(settings.shutdown_grace_s),
        "--log-level",
        settings.log_level,
        "--log-format",
        settings.log_format,
    ]
    if settings.redis_url:
        return [*args, "--redis-url", settings.redis_url, "--key-prefix", settings.key_prefix]
    args += ["--server", settings.server]
    if settings.auth_token:
        args += ["--token", settings.auth_token.get_secret_value()]
    return args

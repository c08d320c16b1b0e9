"""The composition root: settings in, a ready Worker out. Nothing connects here."""

from __future__ import annotations

import logging

from jobqueue.domain import SystemClock
from jobqueue.redis import RedisJobStore, RedisStoreSettings
from jobqueue.worker import GrpcSource, JobSource, StoreSource, Worker, WorkerSettings

from ._handlers import register_handlers
from ._settings import ExampleWorkerSettings


def build_source(settings: ExampleWorkerSettings) -> JobSource:
    """Redis directly when ``JOBQUEUE_REDIS_URL`` is set, else the server over gRPC."""
    if settings.redis_url:
        store = RedisJobStore(
            RedisStoreSettings(url=settings.redis_url, key_prefix=settings.key_prefix),
            clock=SystemClock(),
        )
        return StoreSource(store, close_store=True)
    token = settings.auth_token.get_secret_value() if settings.auth_token else None
    metadata = [("authorization", f"Bearer {token}")] if token else []
    return GrpcSource(settings.server, metadata=metadata)


def build_worker(settings: ExampleWorkerSettings) -> Worker:
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


class KeyValueFormatter(logging.Formatter):
    """Appends a record's ``extra=`` fields as ``key=value``, so logs stay greppable."""

    _STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = " ".join(
            f"{key}={value}" for key, value in vars(record).items() if key not in self._STANDARD
        )
        return f"{line} {fields}" if fields else line


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(KeyValueFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)

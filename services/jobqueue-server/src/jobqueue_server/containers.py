"""The composition root: settings → store → use cases → servicers → server.

Only this module (and the rest of ``services/``) knows dependency-injector;
the libraries take typed settings through their constructors. Tests override
a provider (``with container.store.override(fake):``) instead of patching.
"""

from __future__ import annotations

import logging

from dependency_injector import containers, providers

from jobqueue.domain import Clock, JobService, JobStore, Limits, SystemClock, UuidV7Generator
from jobqueue.grpc import (
    JOB_SERVICE_NAME,
    WORKER_SERVICE_NAME,
    JobServicer,
    ServerOptions,
    StoreHealth,
    WorkerServicer,
)
from jobqueue.memory import MemoryJobStore, MemoryStoreSettings
from jobqueue.redis import RedisJobStore, RedisStoreSettings

from .settings import ServerSettings

_log = logging.getLogger(__name__)


def memory_store(*, retention_ms: int, clock: Clock) -> JobStore:
    _log.warning(
        "no Redis configured (JOBQUEUE_REDIS_URL): using the in-memory store; "
        "nothing survives a restart"
    )
    return MemoryJobStore(MemoryStoreSettings(retention_ms=retention_ms), clock=clock)


def redis_store(*, url: str, key_prefix: str, retention_ms: int, clock: Clock) -> JobStore:
    settings = RedisStoreSettings(url=url, key_prefix=key_prefix, retention_ms=retention_ms)
    _log.info("using the Redis store (key prefix %r)", key_prefix)
    return RedisJobStore(settings, clock=clock)


class Container(containers.DeclarativeContainer):
    """Builds the server's object graph from one ``ServerSettings``."""

    settings = providers.Singleton(ServerSettings)

    clock = providers.Singleton(SystemClock)
    ids = providers.Singleton(UuidV7Generator)
    limits = providers.Singleton(Limits, max_payload_bytes=settings.provided.max_payload_bytes)
    options = providers.Singleton(
        ServerOptions, max_message_bytes=settings.provided.max_message_bytes
    )

    store = providers.Selector(
        settings.provided.store_kind,
        memory=providers.Singleton(
            memory_store, retention_ms=settings.provided.retention_ms, clock=clock
        ),
        redis=providers.Singleton(
            redis_store,
            url=settings.provided.effective_redis_url,
            key_prefix=settings.provided.key_prefix,
            retention_ms=settings.provided.retention_ms,
            clock=clock,
        ),
    )

    job_service = providers.Singleton(JobService, store, clock=clock, ids=ids, limits=limits)
    job_servicer = providers.Singleton(JobServicer, job_service, options=options)
    worker_servicer = providers.Singleton(WorkerServicer, store, limits=limits, options=options)
    health = providers.Singleton(
        StoreHealth,
        store,
        services=[JOB_SERVICE_NAME, WORKER_SERVICE_NAME],
        interval_s=options.provided.health_check_interval_s,
        timeout_s=options.provided.health_check_timeout_s,
    )

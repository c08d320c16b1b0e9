"""The composition root: settings → store → use cases → servicers → server.

Only this module (and the rest of ``services/``) knows dependency-injector;
the libraries take typed settings through their constructors. Tests override
a provider (``with container.store.override(fake):``) instead of patching.
"""

from __future__ import annotations

import logging
from pathlib import Path

from dependency_injector import containers, providers
from pydantic import SecretStr

from jobqueue.domain import (
    AdminService,
    Clock,
    GateService,
    JobService,
    JobStore,
    LeaseService,
    Limits,
    PresenceService,
    SystemClock,
    UuidV7Generator,
)
from jobqueue.grpc import (
    JOB_SERVICE_NAME,
    WORKER_SERVICE_NAME,
    AdminServicer,
    BearerTokenAuth,
    JobServicer,
    ServerOptions,
    ServerTls,
    StoreHealth,
    WorkerServicer,
    list_workers_seam,
    parse_tokens,
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


def redis_store_settings(
    *,
    url: str,
    key_prefix: str,
    retention_ms: int,
    min_replicas: int = 0,
    replica_timeout_ms: int = 1_000,
    max_finished: int | None = None,
    shards: int | None = None,
) -> RedisStoreSettings:
    """The Redis store's settings; ValueError names what is wrong (the CLI checks them first)."""
    return RedisStoreSettings(
        url=url,
        key_prefix=key_prefix,
        retention_ms=retention_ms,
        max_finished=max_finished,
        min_replicas=min_replicas,
        replica_timeout_ms=replica_timeout_ms,
        shards=shards,
    )


def redis_store(*, settings: RedisStoreSettings, clock: Clock) -> JobStore:
    _log.info("using the Redis store (key prefix %r)", settings.key_prefix)
    if settings.min_replicas:
        _log.info(
            "writes wait for %d replica(s), at most %d ms each",
            settings.min_replicas,
            settings.replica_timeout_ms,
        )
    return RedisJobStore(settings, clock=clock)


_SHORT_TOKEN = 16


def bearer_auth(*, token: SecretStr | None, token_file: Path | None) -> BearerTokenAuth | None:
    """The auth interceptor, or None when no token is configured.

    Raises ValueError when the configured source holds no usable token, and
    OSError when the token file cannot be read: a server that was meant to be
    protected must not start open.
    """
    if token is not None:
        source, text = "JOBQUEUE_AUTH_TOKEN", token.get_secret_value()
    elif token_file is not None:
        source, text = f"JOBQUEUE_AUTH_TOKEN_FILE ({token_file})", token_file.read_text()
    else:
        _log.warning("no JOBQUEUE_AUTH_TOKEN: every client may call every RPC")
        return None
    try:
        tokens = parse_tokens(text)
    except ValueError as error:
        raise ValueError(f"{source}: {error}") from None
    if not tokens:
        raise ValueError(f"{source} holds no token")
    if any(len(t) < _SHORT_TOKEN for t in tokens):
        _log.warning("an auth token is shorter than %d characters: easy to guess", _SHORT_TOKEN)
    _log.info("bearer-token authentication on (%d token(s) accepted)", len(tokens))
    return BearerTokenAuth(tokens)


def server_tls(
    *, cert_file: Path | None, key_file: Path | None, client_ca_file: Path | None
) -> ServerTls | None:
    """TLS material read from the configured files, or None for plaintext.

    Raises OSError when a file cannot be read, ValueError when it is not PEM.
    """
    if cert_file is None or key_file is None:
        return None
    return ServerTls.from_files(
        cert_file=cert_file, key_file=key_file, client_ca_file=client_ca_file
    )


class Container(containers.DeclarativeContainer):
    """Builds the server's object graph from one ``ServerSettings``."""

    settings = providers.Singleton(ServerSettings)

    clock = providers.Singleton(SystemClock)
    ids = providers.Singleton(UuidV7Generator)
    limits = providers.Singleton(Limits, max_payload_bytes=settings.provided.max_payload_bytes)
    options = providers.Singleton(
        ServerOptions, max_message_bytes=settings.provided.max_message_bytes
    )

    redis_settings = providers.Singleton(
        redis_store_settings,
        url=settings.provided.effective_redis_url,
        key_prefix=settings.provided.key_prefix,
        retention_ms=settings.provided.retention_ms,
        min_replicas=settings.provided.redis_min_replicas,
        replica_timeout_ms=settings.provided.redis_replica_timeout_ms,
        max_finished=settings.provided.max_finished_per_type,
        shards=settings.provided.redis_shards,
    )
    store = providers.Selector(
        settings.provided.store_kind,
        memory=providers.Singleton(
            memory_store, retention_ms=settings.provided.retention_ms, clock=clock
        ),
        redis=providers.Singleton(redis_store, settings=redis_settings, clock=clock),
    )

    job_service = providers.Singleton(JobService, store, clock=clock, ids=ids, limits=limits)
    job_servicer = providers.Singleton(JobServicer, job_service, options=options)
    lease_service = providers.Singleton(
        LeaseService,
        store,
        limits=limits,
        rules=options.provided.lease_rules.call(),
        clock=clock,
    )
    # Worker presence (both stores are PresenceStores): Heartbeat, ListWorkers, the dashboard.
    presence_service = providers.Singleton(PresenceService, store)
    worker_servicer = providers.Singleton(
        WorkerServicer, lease_service, options=options, clock=clock, presence=presence_service
    )
    # Retry, delete and bulk actions; ListWorkers through the presence use case.
    admin_service = providers.Singleton(AdminService, store)
    # Pausing job types (both stores are TypeGates): AdminService and the dashboard.
    gate_service = providers.Singleton(GateService, store)
    admin_servicer = providers.Singleton(
        AdminServicer,
        admin_service,
        gates=gate_service,
        list_workers=providers.Callable(list_workers_seam, presence_service),
    )
    auth = providers.Singleton(
        bearer_auth,
        token=settings.provided.auth_token,
        token_file=settings.provided.auth_token_file,
    )
    tls = providers.Singleton(
        server_tls,
        cert_file=settings.provided.tls_cert_file,
        key_file=settings.provided.tls_key_file,
        client_ca_file=settings.provided.tls_client_ca_file,
    )
    health = providers.Singleton(
        StoreHealth,
        store,
        services=[JOB_SERVICE_NAME, WORKER_SERVICE_NAME],
        interval_s=options.provided.health_check_interval_s,
        timeout_s=options.provided.health_check_timeout_s,
    )

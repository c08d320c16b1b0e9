"""The example worker authenticates to a server that requires a token."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from jobqueue.grpc import BearerTokenAuth
from jobqueue.memory import MemoryJobStore
from jobqueue.worker import SourceError, SourceUnavailable
from jobqueue_example_worker._bootstrap import build_source
from jobqueue_example_worker._settings import ExampleWorkerSettings
from tests.grpc.conftest import start_api

TOKEN = "example-worker-token-0123456789"


@pytest.mark.parametrize(("token", "allowed"), [(TOKEN, True), (None, False), ("wrong", False)])
async def test_the_example_worker_sends_its_token(token: str | None, allowed: bool) -> None:
    store = MemoryJobStore()
    server = await start_api(store, interceptors=[BearerTokenAuth([TOKEN])])
    settings = ExampleWorkerSettings(
        server=f"127.0.0.1:{server.port}",
        auth_token=SecretStr(token) if token else None,
        redis_url=None,
    )
    source = build_source(settings)
    try:
        if allowed:
            assert await source.claim(["send_email"], limit=1, lease_ms=1_000, wait_ms=0) == []
        else:
            with pytest.raises((SourceError, SourceUnavailable)):
                await source.claim(["send_email"], limit=1, lease_ms=1_000, wait_ms=0)
    finally:
        await source.close()
        await server.stop(None)
        await store.close()

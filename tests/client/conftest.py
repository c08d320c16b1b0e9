"""Fixtures of the client tests: an in-process server, and clients pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from jobqueue.client import AsyncJobClient, JobClient, RetryPolicy
from jobqueue.grpc import RunningServer
from tests.client._servers import ServerThread, UnreliableStore, start_test_server
from tests.server._process import ServerProcess

FAST_RETRY = RetryPolicy(max_retries=8, initial_backoff_s=0.02, max_backoff_s=0.2)
"""Quick retries, so that an outage test takes a fraction of a second."""


@pytest.fixture
async def store() -> AsyncIterator[UnreliableStore]:
    store = UnreliableStore()
    yield store
    await store.close()


@pytest.fixture
async def server(store: UnreliableStore) -> AsyncIterator[RunningServer]:
    server = await start_test_server(store)
    yield server
    await server.stop(None)


@pytest.fixture
async def client(server: RunningServer) -> AsyncIterator[AsyncJobClient]:
    async with AsyncJobClient(
        target=f"127.0.0.1:{server.port}", timeout_s=5, retries=FAST_RETRY
    ) as client:
        yield client


@pytest.fixture
def server_thread() -> Iterator[ServerThread]:
    thread = ServerThread()
    thread.start()
    yield thread
    thread.stop()


@pytest.fixture
def sync_client(server_thread: ServerThread) -> Iterator[JobClient]:
    with JobClient(target=server_thread.target, timeout_s=5, retries=FAST_RETRY) as client:
        yield client


@pytest.fixture(scope="module")
def target() -> Iterator[str]:
    """One real ``jobqueue-server`` (in-memory store) for the module; tests use their own types."""
    server = ServerProcess()
    server.start()
    yield f"127.0.0.1:{server.port}"
    server.stop()

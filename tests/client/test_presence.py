"""Worker presence through both SDKs and the CLI, over a real gRPC server.

The server is in process (its own thread and event loop) and serves
JobService, WorkerService (Heartbeat) and AdminService (ListWorkers through
the presence use case) over a memory store; the CLI runs as a subprocess.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from jobqueue.client import AsyncJobClient, JobClient, WorkerInfo
from jobqueue.domain import AdminService, PresenceService
from jobqueue.domain import WorkerInfo as DomainWorker
from jobqueue.grpc import AdminServicer, list_workers_seam
from tests.client._servers import AdminServerThread
from tests.client.test_cli import run_cli

STARTED_MS = 1_800_000_000_000


class PresenceServer(AdminServerThread):
    """JobService and AdminService's ListWorkers over one memory store, on a loop of its own."""

    def __init__(self) -> None:
        super().__init__("presence-server")

    def admin_servicer(self) -> AdminServicer:
        seam = list_workers_seam(PresenceService(self.store))
        return AdminServicer(AdminService(self.store), list_workers=seam)

    def beat(self, worker_id: str, *types: str, busy: int = 0) -> DomainWorker:
        info = DomainWorker(
            id=worker_id,
            host="box",
            pid=42,
            sdk="jobqueue-python/9.9.9",
            types=types,
            concurrency=8,
            busy=busy,
            started_at_ms=STARTED_MS,
        )
        return self.run(self.store.heartbeat(info, ttl_ms=30_000))


@pytest.fixture
def presence_server() -> Iterator[PresenceServer]:
    server = PresenceServer()
    yield server
    server.stop()


def test_the_blocking_client_lists_workers_and_counts_them_in_stats(
    presence_server: PresenceServer,
) -> None:
    stored = presence_server.beat("box-42-aa", "email", "sms", busy=3)
    presence_server.beat("box-43-bb", "email")
    with JobClient(target=presence_server.target, timeout_s=5) as client:
        workers = client.list_workers()
        assert [w.id for w in workers] == ["box-42-aa", "box-43-bb"]
        first = workers[0]
        assert first == WorkerInfo(
            id="box-42-aa",
            host="box",
            pid=42,
            sdk="jobqueue-python/9.9.9",
            types=("email", "sms"),
            concurrency=8,
            busy=3,
            started_at=datetime.fromtimestamp(STARTED_MS / 1000, tz=UTC),
            last_seen_at=datetime.fromtimestamp(stored.last_seen_at_ms / 1000, tz=UTC),
        )
        client.enqueue("email")
        client.enqueue("orphan")
        rows = {row.type: row for row in client.stats().types}
        assert (rows["email"].workers, rows["orphan"].workers) == (2, 0)
        assert [name for name, row in rows.items() if row.unattended] == ["orphan"]
        assert rows["orphan"].to_dict()["workers"] == 0
        assert rows["orphan"].oldest_pending_age_s >= 0


async def test_the_async_client_lists_workers(presence_server: PresenceServer) -> None:
    async with AsyncJobClient(target=presence_server.target, timeout_s=5) as client:
        assert await client.list_workers() == []
        await asyncio.to_thread(presence_server.beat, "w-1", "email")
        assert [w.types for w in await client.list_workers()] == [("email",)]


@pytest.mark.integration
def test_the_cli_lists_workers_and_flags_a_type_nobody_handles(
    presence_server: PresenceServer,
) -> None:
    target = presence_server.target
    empty = run_cli(target, "workers")
    assert (empty.code, empty.stdout.strip()) == (0, "no live workers")
    presence_server.beat("box-42-aa", "email", busy=2)
    table = run_cli(target, "workers")
    assert table.code == 0
    for shown in ("box-42-aa", "2/8", "email", "jobqueue-python/9.9.9"):
        assert shown in table.stdout
    lines = run_cli(target, "workers", "--json")
    (line,) = lines.stdout.splitlines()
    parsed = json.loads(line)
    assert (parsed["id"], parsed["types"], parsed["busy"]) == ("box-42-aa", ["email"], 2)
    with JobClient(target=target, timeout_s=5) as client:
        client.enqueue("email")
        client.enqueue("orphan")
    stats = run_cli(target, "stats")
    assert "orphan (no worker)" in stats.stdout
    assert "no live worker handles orphan" in stats.stdout
    assert "email (no worker)" not in stats.stdout
    as_json = json.loads(run_cli(target, "stats", "--json").stdout)
    rows = {row["type"]: row for row in as_json["types"]}
    assert (rows["email"]["workers"], rows["orphan"]["workers"]) == (1, 0)

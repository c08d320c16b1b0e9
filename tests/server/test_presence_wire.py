"""WorkerService.Heartbeat on the wire app: the answers and codes of grpcio, on every protocol."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from connectrpc.code import Code
from connectrpc.errors import ConnectError

from jobqueue.memory import MemoryJobStore
from mpataki.jobqueue.v1 import worker_pb2 as wpb
from tests.server._wire import WIRES, Wire, WireServer, start_wire, wire_client


@pytest.fixture
async def served() -> AsyncIterator[WireServer]:
    server = await start_wire(MemoryJobStore())
    try:
        yield server
    finally:
        await server.stop()


def info(worker_id: str) -> wpb.WorkerInfo:
    return wpb.WorkerInfo(
        id=worker_id, host="h", pid=1, sdk="jobqueue-go/1.0.0", types=["email"], concurrency=2
    )


@pytest.mark.parametrize("wire", WIRES, ids=[w.name for w in WIRES])
async def test_heartbeats_register_refuse_and_deregister_alike_on_every_wire(
    served: WireServer, wire: Wire
) -> None:
    store = served.store
    assert isinstance(store, MemoryJobStore)
    async with wire_client(served.url, wire) as client:
        await client.unary(
            "WorkerService", "Heartbeat", wpb.HeartbeatRequest(worker=info("w-1"), ttl_ms=5_000)
        )
        assert [w.id for w in await store.list_workers()] == ["w-1"]
        for bad in (
            wpb.HeartbeatRequest(worker=info("bad id")),
            wpb.HeartbeatRequest(worker=info("w-2"), ttl_ms=10),
        ):
            with pytest.raises(ConnectError) as caught:
                await client.unary("WorkerService", "Heartbeat", bad)
            assert caught.value.code is Code.INVALID_ARGUMENT
        assert [w.id for w in await store.list_workers()] == ["w-1"]
        await client.unary(
            "WorkerService", "Heartbeat", wpb.HeartbeatRequest(worker=info("w-1"), stopping=True)
        )
        assert await store.list_workers() == []

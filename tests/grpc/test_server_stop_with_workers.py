"""A stopping server does not wait out its grace for workers' cancellation streams.

Every worker behind the server holds a WatchCancellations stream for as long
as it runs; left open, those streams would keep every graceful stop for the
whole grace period (measured: 5.5 s of a 5 s grace instead of 0.8 s).
"""

from __future__ import annotations

import asyncio
import time

import pytest

from jobqueue.worker import GrpcSource
from jobqueue_server import App, Container, ServerSettings

GRACE_S = 30.0


@pytest.mark.parametrize("wire", ["http", "grpcio"])
async def test_open_cancellation_streams_do_not_hold_a_stop(wire: str) -> None:
    container = Container()
    container.settings.override(
        ServerSettings(host="127.0.0.1", port=0, wire=wire, shutdown_grace_s=GRACE_S)  # type: ignore[arg-type]
    )
    app = App(container)
    await app.start()
    sources = [GrpcSource(f"127.0.0.1:{app.port}", timeout_s=5) for _ in range(3)]

    async def follow(source: GrpcSource) -> None:
        async for _ in source.cancellations():
            pass

    readers = [asyncio.create_task(follow(source)) for source in sources]
    try:
        # The streams are open once the server's store has its listeners.
        await asyncio.sleep(0.5)
        started = time.monotonic()
        await app.stop()
        # Bounded far below the grace: only the ended streams can make it so.
        assert time.monotonic() - started < GRACE_S / 3
    finally:
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        for source in sources:
            await source.close()

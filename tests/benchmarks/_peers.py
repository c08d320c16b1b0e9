"""The peers, each through its documented API: producers here, workers in children.

Concurrency per peer is what its documentation recommends (or defaults to) for
I/O-bound work; see ``CONCURRENCY`` and docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from importlib import metadata
from typing import Any

from ._common import now, payload_bytes, peak_rss_mib, report, signal_ready, stamp_of

PEERS = ("taskiq", "huey", "dramatiq", "saq", "rq")
CONCURRENCY: dict[str, tuple[int, str]] = {
    "taskiq": (100, "async tasks per worker (taskiq's --max-async-tasks default)"),
    "huey": (16, "threads (-k thread -w 16: thread workers for I/O-bound tasks)"),
    "dramatiq": (8, "threads (dramatiq's --threads default)"),
    "saq": (50, "async jobs per worker (Worker(concurrency=...), I/O-bound)"),
    "rq": (1, "SimpleWorker: one job at a time (RQ runs jobs sequentially)"),
}
DISTRIBUTIONS = {
    "taskiq": ("taskiq", "taskiq-redis"),
    "huey": ("huey",),
    "dramatiq": ("dramatiq",),
    "saq": ("saq",),
    "rq": ("rq",),
}


def versions(peer: str) -> str:
    return ", ".join(f"{name} {metadata.version(name)}" for name in DISTRIBUTIONS[peer])


class _Tally:
    """Counts handler starts from any thread and reports once ``count`` is reached."""

    def __init__(self, count: int, latency: bool) -> None:
        self.count = count
        self.latency = latency
        self.seen = 0
        self.latencies: list[float] = []
        self.started = now()
        self.lock = threading.Lock()
        self.done = threading.Event()

    def hit(self, payload: str) -> None:
        arrived = now()
        with self.lock:
            if self.latency:
                self.latencies.append(arrived - stamp_of(payload.encode()))
            self.seen += 1
            if self.seen == self.count:
                self.done.set()

    def report(self, concurrency: int) -> None:
        report(
            {
                "count": self.seen,
                "seconds": now() - self.started,
                "rss_mib": peak_rss_mib(),
                "concurrency": concurrency,
                "latencies": self.latencies,
            }
        )


_tally: _Tally | None = None
COUNTER_KEY = "bench:incr"
_incr_sync: Any = None
"""With ``--handler incr``: a redis-py client whose INCR thread-based peers' handlers call."""
_incr_async: Any = None
"""With ``--handler incr``: a redis.asyncio client for the async peers (made on their loop)."""
_redis_url = ""
_pool_size = 100


def _hit(payload: str) -> None:
    """A thread-based peer's handler: one INCR round trip first when the variant asks."""
    assert _tally is not None
    if _incr_sync is not None:
        _incr_sync.incr(COUNTER_KEY)
    _tally.hit(payload)


async def _hit_async(payload: str) -> None:
    """An async peer's handler: one INCR through redis-py's asyncio client first, if asked."""
    global _incr_async
    assert _tally is not None
    if _redis_url and _incr_async is None:
        import redis.asyncio

        # A pool as large as the concurrency: redis-py's asyncio pool stops at 100 by default.
        _incr_async = redis.asyncio.Redis.from_url(_redis_url, max_connections=_pool_size)
    if _incr_async is not None:
        await _incr_async.incr(COUNTER_KEY)
    _tally.hit(payload)


def _payload(stamp: float = 0.0) -> str:
    return payload_bytes(stamp).decode()


# -- taskiq --------------------------------------------------------------------------


def _taskiq(url: str) -> tuple[Any, Any]:
    from taskiq_redis import ListQueueBroker

    broker = ListQueueBroker(url)

    @broker.task(task_name="noop")
    async def noop(payload: str) -> None:
        await _hit_async(payload)

    return broker, noop


async def taskiq_enqueue(url: str, count: int, rate: float = 0.0) -> float:
    broker, noop = _taskiq(url)
    await broker.startup()
    try:
        return await _paced_async(lambda s: noop.kiq(_payload(s)), count, rate)
    finally:
        await broker.shutdown()


async def taskiq_worker(url: str, tally: _Tally, concurrency: int) -> None:
    from taskiq.api import run_receiver_task

    broker, _ = _taskiq(url)
    broker.is_worker_process = True
    await broker.startup()
    tally.started = now()
    task = asyncio.create_task(run_receiver_task(broker, max_async_tasks=concurrency))
    signal_ready()
    await asyncio.to_thread(tally.done.wait, 600)
    tally.report(concurrency)
    task.cancel()


# -- huey ------------------------------------------------------------------------------


def _huey(url: str) -> tuple[Any, Any]:
    from huey import RedisHuey

    huey = RedisHuey("bench", url=url, results=False)

    @huey.task(name="noop")  # type: ignore[untyped-decorator,unused-ignore]
    def noop(payload: str) -> None:
        _hit(payload)

    return huey, noop


def huey_enqueue(url: str, count: int, rate: float = 0.0) -> float:
    _, noop = _huey(url)
    return _paced_sync(lambda s: noop(_payload(s)), count, rate)


def huey_worker(url: str, tally: _Tally, concurrency: int) -> None:
    huey, _ = _huey(url)
    consumer = huey.create_consumer(workers=concurrency, worker_type="thread", periodic=False)
    _finish_when_done(tally, concurrency)
    tally.started = now()
    signal_ready()
    consumer.run()


# -- dramatiq -----------------------------------------------------------------------------


def _dramatiq(url: str) -> tuple[Any, Any]:
    import dramatiq
    from dramatiq.brokers.redis import RedisBroker

    broker = RedisBroker(url=url)  # type: ignore[no-untyped-call,unused-ignore]
    dramatiq.set_broker(broker)

    @dramatiq.actor(actor_name="noop", queue_name="bench", max_retries=0)
    def noop(payload: str) -> None:
        _hit(payload)

    return broker, noop


def dramatiq_enqueue(url: str, count: int, rate: float = 0.0) -> float:
    _, noop = _dramatiq(url)
    return _paced_sync(lambda s: noop.send(_payload(s)), count, rate)


def dramatiq_worker(url: str, tally: _Tally, concurrency: int) -> None:
    import dramatiq

    broker, _ = _dramatiq(url)
    worker = dramatiq.Worker(broker, worker_threads=concurrency)
    tally.started = now()
    worker.start()
    signal_ready()
    tally.done.wait(600)
    tally.report(concurrency)
    os._exit(0)


# -- saq ---------------------------------------------------------------------------------


async def _saq_noop(ctx: Any, *, payload: str) -> None:
    await _hit_async(payload)


async def saq_enqueue(url: str, count: int, rate: float = 0.0) -> float:
    from saq import Queue

    queue = Queue.from_url(url, name="bench")
    await queue.connect()
    try:
        return await _paced_async(
            lambda s: queue.enqueue("_saq_noop", payload=_payload(s)), count, rate
        )
    finally:
        await queue.disconnect()


async def saq_worker(url: str, tally: _Tally, concurrency: int) -> None:
    from saq import Queue, Worker

    queue = Queue.from_url(url, name="bench")
    worker = Worker(queue, functions=[_saq_noop], concurrency=concurrency)
    tally.started = now()
    task = asyncio.create_task(worker.start())
    signal_ready()
    await asyncio.to_thread(tally.done.wait, 600)
    tally.report(concurrency)
    task.cancel()


# -- rq ------------------------------------------------------------------------------------


def rq_noop(payload: str) -> None:
    _hit(payload)


def _rq(url: str) -> Any:
    from redis import Redis
    from rq import Queue

    return Queue("bench", connection=Redis.from_url(url))


def rq_enqueue(url: str, count: int, rate: float = 0.0) -> float:
    queue = _rq(url)
    return _paced_sync(lambda s: queue.enqueue(rq_noop, _payload(s)), count, rate)


def rq_enqueue_bulk(url: str, count: int, batch: int = 1_000) -> float:
    from rq import Queue

    queue = _rq(url)
    started = now()
    for _ in range(max(count // batch, 1)):
        queue.enqueue_many([Queue.prepare_data(rq_noop, (_payload(),)) for _ in range(batch)])
    return max(count // batch, 1) * batch / (now() - started)


def rq_worker(url: str, tally: _Tally, concurrency: int) -> None:
    from rq import SimpleWorker

    queue = _rq(url)
    worker = SimpleWorker([queue], connection=queue.connection)
    _finish_when_done(tally, concurrency)
    tally.started = now()
    signal_ready()
    worker.work(with_scheduler=False, logging_level="WARNING")


# -- shared ----------------------------------------------------------------------------------


def _finish_when_done(tally: _Tally, concurrency: int) -> None:
    """For consumers that own the main thread: report from a watcher thread, then exit."""

    def watch() -> None:
        tally.done.wait(600)
        tally.report(concurrency)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def _paced_sync(call: Callable[[float], Any], count: int, rate: float) -> float:
    """``count`` calls back to back (rate 0) or at ``rate`` per second; returns calls/s."""
    import time

    started = now()
    for i in range(count):
        if rate:
            delay = started + i / rate - now()
            if delay > 0:
                time.sleep(delay)
        call(now())
    return count / (now() - started)


async def _paced_async(call: Callable[[float], Any], count: int, rate: float) -> float:
    started = now()
    for i in range(count):
        if rate:
            delay = started + i / rate - now()
            if delay > 0:
                await asyncio.sleep(delay)
        await call(now())
    return count / (now() - started)


def run_worker(
    peer: str,
    url: str,
    mode: str,
    count: int,
    concurrency: int,
    use_uvloop: bool,
    *,
    handler: str = "noop",
) -> None:
    """One peer's worker to ``count`` handler calls.

    ``handler`` "incr": every handler makes one Redis round trip (INCR), through
    redis-py's asyncio client in the async peers and its blocking client (one
    pool shared by the threads) in the thread-based ones, each peer's usual client.
    """
    global _tally, _incr_sync, _redis_url, _pool_size
    _tally = tally = _Tally(count, latency=mode == "latency")
    if handler == "incr":
        _pool_size = max(concurrency, 100)
        if peer in ("taskiq", "saq"):
            _redis_url = url
        else:
            import redis

            _incr_sync = redis.Redis.from_url(url, max_connections=_pool_size)
            _incr_sync.ping()
    factory = None
    if use_uvloop:
        import uvloop

        factory = uvloop.new_event_loop
    if peer == "taskiq":
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(taskiq_worker(url, tally, concurrency))
    elif peer == "saq":
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(saq_worker(url, tally, concurrency))
    elif peer == "huey":
        huey_worker(url, tally, concurrency)
    elif peer == "dramatiq":
        dramatiq_worker(url, tally, concurrency)
    elif peer == "rq":
        rq_worker(url, tally, concurrency)
    else:
        raise ValueError(peer)
    os._exit(0)


async def enqueue(peer: str, url: str, count: int, rate: float = 0.0) -> float:
    if peer == "taskiq":
        return await taskiq_enqueue(url, count, rate=rate)
    if peer == "saq":
        return await saq_enqueue(url, count, rate=rate)
    sync = {"huey": huey_enqueue, "dramatiq": dramatiq_enqueue, "rq": rq_enqueue}[peer]
    return sync(url, count, rate)

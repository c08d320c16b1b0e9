"""The parts of a started worker, wired together: pool, runner, metrics, leases, loops, presence.

``Worker.start`` builds them here in one go so that the ``Worker`` class stays
the life-cycle face (register, start, stop) and the wiring between the parts
(who is told about whom) reads in one place.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import TYPE_CHECKING

from ._leases import LeaseKeeper
from ._logging import logger
from ._loops import Loops
from ._presence import PresenceBeat
from ._progress import ProgressReporter
from ._registry import HandlerRegistry
from ._runner import JobRunner
from ._settings import WorkerSettings
from ._source import JobSource, ProgressSource
from ._state import InFlight
from ._threads import DaemonThreadPool
from ._version import installed_version

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from ._metrics import WorkerMetrics


@dataclasses.dataclass(frozen=True)
class MetricsWanted:
    """Where the worker's metrics go: the user's registry, a port of their own, or nowhere."""

    registry: CollectorRegistry | None = None
    port: int | None = None
    host: str = "127.0.0.1"


@dataclasses.dataclass
class Parts:
    """A started worker's parts and background tasks, as ``stop`` takes them down.

    The source, the runner and the lease keeper are the loops' own (``loops.source`` ...).
    """

    loops: Loops
    pool: DaemonThreadPool | None
    presence: PresenceBeat | None
    claim_task: asyncio.Task[None]
    tasks: list[asyncio.Task[None]]


def assemble(
    source: JobSource,
    settings: WorkerSettings,
    registry: HandlerRegistry,
    state: InFlight,
    wanted: MetricsWanted,
) -> Parts:
    """Build the parts over ``source`` and start their tasks on the running loop."""
    handlers = registry.handlers
    types = tuple(handlers)
    pool = None
    if not all(handler.is_async for handler in handlers.values()):
        size = settings.thread_pool_size or min(32, settings.concurrency)
        pool = DaemonThreadPool(size, thread_name_prefix="jobqueue-handler")
    runner = JobRunner(handlers, settings, state, pool)
    runner.invoke_chain = registry.chain(runner.invoke)
    runner.metrics = _start_metrics(wanted, settings, state)
    if isinstance(source, ProgressSource):
        runner.progress = ProgressReporter(source, asyncio.get_running_loop())
    leases = LeaseKeeper(
        source, settings, state.jobs, lose=runner.abandon, cancel=runner.request_cancel
    )
    loops = Loops(source, settings, types, state, runner, leases)
    claim_task = asyncio.create_task(loops.claim_loop(), name="jobqueue-claim")
    tasks = [asyncio.create_task(loops.flush_loop(), name="jobqueue-settle"), *leases.start()]
    if settings.requeue_interval_ms:
        tasks.append(asyncio.create_task(loops.requeue_loop(), name="jobqueue-requeue"))
    presence = PresenceBeat(
        source, settings, types, state, sdk=f"jobqueue-python/{worker_version()}"
    )
    if presence.enabled:
        tasks.append(asyncio.create_task(presence.run(), name="jobqueue-presence"))
    enabled = presence if presence.enabled else None
    return Parts(loops, pool, enabled, claim_task, tasks)


def _start_metrics(
    wanted: MetricsWanted, settings: WorkerSettings, state: InFlight
) -> WorkerMetrics | None:
    if wanted.registry is None and wanted.port is None:
        return None
    # Imported here: a worker without metrics never loads prometheus-client.
    from ._metrics import WorkerMetrics

    metrics = WorkerMetrics(wanted.registry)
    concurrency = settings.concurrency
    # A lane's claim may answer before the other lane's settle frees its slots.
    metrics.bind(concurrency=concurrency, busy=lambda: min(len(state.jobs), concurrency))
    if wanted.port is not None:
        bound = metrics.serve(host=wanted.host, port=wanted.port)
        logger.info("serving worker metrics on %s:%d", wanted.host, bound)
    return metrics


def worker_version() -> str:
    """The installed jobqueue-worker's version, for the start log and the presence's sdk."""
    return installed_version()

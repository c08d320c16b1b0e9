"""What one measured window costs inside a benchmark child: CPU, loop turns, allocations.

Used by ``cost.py`` only, in the benchmark's own child processes (never in the
product): the worker child opens a window around its drain, the server child
opens and closes one when the driver sends SIGUSR1.

* CPU: ``resource.getrusage(RUSAGE_SELF)`` user + system, every thread.
* Event-loop iterations: asyncio's selector loop calls ``selector.select`` once
  per iteration, so a counting wrapper on the running loop's selector counts
  them. uvloop runs its loop in C with no such hook: on uvloop the count is
  None, and cost.py takes it from a pass on asyncio's loop.
* Allocations: memray's ``Tracker`` with ``trace_python_allocators`` records
  every pymalloc and libc allocation (and free) in the window; the count is
  the allocation records. It slows the process severalfold, so cost.py runs it
  in a pass of its own. (``sys.getallocatedblocks`` only gives the net change.)
* Profile: cProfile over the window, dumped for ``pstats``.
"""

from __future__ import annotations

import asyncio
import os
import resource
import sys
from typing import Any

FREES = frozenset({"FREE", "PYMALLOC_FREE", "MUNMAP"})


class LoopCounter:
    """Counts ``select`` calls of an asyncio selector loop: one per loop iteration."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.count = 0
        selector = getattr(loop, "_selector", None)
        self.supported = selector is not None
        if selector is None:
            return
        select = selector.select

        def counting(timeout: float | None = None) -> Any:
            self.count += 1
            return select(timeout)

        selector.select = counting


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Window:
    """One measured stretch of a process's life; ``close()`` returns its counts."""

    def __init__(self, counter: LoopCounter, allocs_path: str = "", profile_path: str = "") -> None:
        self.counter = counter
        self.allocs_path = allocs_path
        self.profile_path = profile_path
        self.tracker: Any = None
        self.profiler: Any = None
        self.blocks = sys.getallocatedblocks()
        if allocs_path:
            import memray  # type: ignore[import-not-found,unused-ignore]  # uv run --with memray

            if os.path.exists(allocs_path):
                os.remove(allocs_path)
            self.tracker = memray.Tracker(allocs_path, trace_python_allocators=True)
            self.tracker.__enter__()
        if profile_path:
            import cProfile

            self.profiler = cProfile.Profile()
            self.profiler.enable()
        self.iterations = counter.count
        self.cpu = cpu_s()

    def close(self) -> dict[str, Any]:
        cpu = cpu_s() - self.cpu
        iterations = self.counter.count - self.iterations
        if self.profiler is not None:
            self.profiler.disable()
            self.profiler.dump_stats(self.profile_path)
        out: dict[str, Any] = {
            "cpu_s": cpu,
            "loop_iterations": iterations if self.counter.supported else None,
            "net_blocks": sys.getallocatedblocks() - self.blocks,
        }
        if self.tracker is not None:
            self.tracker.__exit__(None, None, None)
            out["allocations"] = count_allocations(self.allocs_path)
            os.remove(self.allocs_path)
        return out


def count_allocations(path: str) -> int:
    """Allocation records (not frees) in a memray capture file."""
    import memray  # type: ignore[import-not-found,unused-ignore]

    reader: Any = memray.FileReader(path)
    records: Any = reader.get_allocation_records()
    kinds: Any = memray.AllocatorType
    count = 0
    for record in records:
        if kinds(record.allocator).name not in FREES:
            count += 1
    return count

"""What the ledger's shared clock says: overlapping runs, early runs, and faked wall clocks.

Every ledger time is ``CLOCK_MONOTONIC`` of this host, which all its processes
share and libfaketime leaves alone when told to: so the runs of processes whose
wall clocks disagree still line up on one true time axis here.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.faults._ledger import Run

LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
"""Debian's libfaketime (``apt-get install faketime``)."""


def skewed_env(offset_s: int) -> dict[str, str]:
    """Environment that shifts a process's wall clock by ``offset_s`` and leaves monotonic true.

    Offset 0 gives an empty environment: an honest process runs without the library.
    """
    if offset_s == 0:
        return {}
    return {
        "LD_PRELOAD": str(LIBFAKETIME),
        "FAKETIME": f"{offset_s:+d}s",
        # The ledger's shared time axis, and every timeout measured on it, stay true.
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }


@dataclass(frozen=True, slots=True)
class ClockReading:
    wall_offset_s: float
    """The child's ``time.time()`` minus ours."""
    monotonic_offset_s: float
    """The child's ``time.monotonic()`` minus ours: about 0 when monotonic is shared."""


def read_child_clock(env: Mapping[str, str]) -> ClockReading:
    """Start a Python child with ``env`` added and compare its clocks with ours."""
    before_wall, before_mono = time.time_ns(), time.monotonic_ns()
    output = subprocess.run(
        [sys.executable, "-c", "import time; print(time.time_ns(), time.monotonic_ns())"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.split()
    after_wall, after_mono = time.time_ns(), time.monotonic_ns()
    child_wall, child_mono = int(output[0]), int(output[1])
    # The child read its clocks somewhere between our two readings: take the middle.
    return ClockReading(
        wall_offset_s=(child_wall - (before_wall + after_wall) / 2) / 1e9,
        monotonic_offset_s=(child_mono - (before_mono + after_mono) / 2) / 1e9,
    )


def ready_clock(ready_file: Path) -> float:
    """A ledger worker's wall clock minus the true one, from its ready marker (seconds)."""
    wall_ns, mono_ns = (int(part) for part in ready_file.read_text().split())
    # Our wall time at the moment of its monotonic reading.
    true_wall_ns = time.time_ns() - (time.monotonic_ns() - mono_ns)
    return (wall_ns - true_wall_ns) / 1e9


def run_end(run: Run, exited: Mapping[int, int]) -> int | None:
    """When a run ended: its end line, else its process's death; None if neither is known."""
    if run.ended_ns is not None:
        return run.ended_ns
    return exited.get(run.pid)


@dataclass(frozen=True, slots=True)
class Overlap:
    job_id: str
    earlier: Run
    later: Run
    earlier_end_ns: int | None
    """None: the earlier run's end is unknown, so it counts as still running."""

    @property
    def overlap_s(self) -> float | None:
        if self.earlier_end_ns is None:
            return None
        return (self.earlier_end_ns - self.later.started_ns) / 1e9


def overlapping_runs(runs: Mapping[str, list[Run]], exited: Mapping[int, int]) -> list[Overlap]:
    """Runs of one job that started before an earlier run of it had ended.

    A run without an end line ended when its process died (``exited``); one
    whose process is not known to have died counts as never ending, so it
    overlaps every later run of the job: a run cannot be proven over by
    silence.
    """
    found = []
    for job_id, job_runs in runs.items():
        ordered = sorted(job_runs, key=lambda run: run.started_ns)
        latest: Run | None = None
        latest_end: int | None = None
        for run in ordered:
            if latest is not None and (latest_end is None or latest_end > run.started_ns):
                found.append(Overlap(job_id, latest, run, latest_end))
            end = run_end(run, exited)
            if latest is None or (latest_end is not None and (end is None or end > latest_end)):
                latest, latest_end = run, end
    return found


def early_runs(
    runs: Mapping[str, list[Run]], due_ns: Mapping[str, int], *, tolerance_ns: int = 2_000_000
) -> list[tuple[str, float]]:
    """Jobs whose first run started before their due time, both on the monotonic clock.

    ``tolerance_ns`` absorbs the error of mapping a wall-clock due time onto the
    monotonic clock (two clock readings microseconds apart) and the store's
    millisecond resolution; it is far below the skew it must detect.
    Returns ``(job id, seconds early)``.
    """
    early = []
    for job_id, due in due_ns.items():
        started = min((run.started_ns for run in runs.get(job_id, [])), default=None)
        if started is not None and started < due - tolerance_ns:
            early.append((job_id, (due - started) / 1e9))
    return early

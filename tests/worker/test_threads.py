"""The daemon thread pool behind plain ``def`` handlers."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from jobqueue.worker._threads import DaemonThreadPool


def test_runs_work_on_at_most_max_daemon_threads() -> None:
    pool = DaemonThreadPool(3)
    seen: set[str] = set()
    lock = threading.Lock()

    def work(n: int) -> int:
        with lock:
            seen.add(threading.current_thread().name)
        assert threading.current_thread().daemon
        time.sleep(0.01)
        return n * 2

    futures = [pool.submit(work, n) for n in range(20)]
    assert [future.result(5) for future in futures] == [n * 2 for n in range(20)]
    assert 1 <= len(seen) <= 3
    pool.shutdown()


def test_errors_reach_the_future() -> None:
    pool = DaemonThreadPool(1)

    def boom() -> None:
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        pool.submit(boom).result(5)
    pool.shutdown()


def test_shutdown_cancels_queued_work_and_refuses_more() -> None:
    pool = DaemonThreadPool(1)
    release = threading.Event()
    running = pool.submit(release.wait, 5)
    queued = pool.submit(time.sleep, 0)
    pool.shutdown(wait=False, cancel_futures=True)
    assert queued.cancelled()
    with pytest.raises(RuntimeError):
        pool.submit(time.sleep, 0)
    release.set()
    assert running.result(5) is True


def test_a_stuck_thread_does_not_keep_the_process_alive() -> None:
    script = (
        "import threading\n"
        "from jobqueue.worker._threads import DaemonThreadPool\n"
        "pool = DaemonThreadPool(1)\n"
        "pool.submit(threading.Event().wait)\n"
        "pool.shutdown(wait=False)\n"
    )
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", script], check=True, timeout=10)
    assert time.monotonic() - started < 10

"""The execution ledger the workers write, the jobs read straight from Redis, and the checks
that hold them against each other (no lost job, no duplicate run, no stale result).
"""

from __future__ import annotations

import itertools
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import redis

from tests.faults._scenario import (
    STATUS_NAMES,
)


@dataclass(frozen=True, slots=True)
class Run:
    """One handler run; times are ``CLOCK_MONOTONIC`` ns, shared by every process here."""

    job_id: str
    attempt: int
    pid: int
    started_ns: int
    ended_ns: int | None
    """None: no end line (its process was killed, or it is still running)."""
    returned: bool = False
    """The handler returned (``E``), rather than being cancelled or raising (``X``)."""


def read_ledger(folder: Path) -> dict[str, list[Run]]:
    """Every handler run per job id, in attempt order."""
    starts: dict[tuple[str, int, int], int] = {}
    ends: dict[tuple[str, int, int], tuple[int, bool]] = {}
    for path in folder.glob("ledger-*.log"):
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) != 5:
                continue  # a line torn by a SIGKILL cannot happen with O_APPEND, but be safe
            event, job_id, attempt, pid, at = parts
            key = (job_id, int(attempt), int(pid))
            if event == "S":
                starts[key] = int(at)
            else:
                ends[key] = (int(at), event == "E")
    runs: dict[str, list[Run]] = defaultdict(list)
    for key, started_ns in starts.items():
        ended_ns, returned = ends.get(key, (None, False))
        runs[key[0]].append(Run(key[0], key[1], key[2], started_ns, ended_ns, returned))
    for job_runs in runs.values():
        job_runs.sort(key=lambda run: (run.attempt, run.started_ns))
    return dict(runs)


# -- the store, read directly ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredJob:
    job_id: str
    status: int
    attempts: int
    result: bytes | None
    error: bytes | None


def read_jobs(
    client: redis.Redis | redis.RedisCluster,
    prefix: str,
    ids: Sequence[str],
    *,
    shards: int = 1,
) -> dict[str, StoredJob | None]:
    """The stored state of each job (None: no such hash), read in pipelined chunks.

    With ``shards`` > 1, each job's hash is in the namespace of the shard its
    id names (jobqueue.redis._shards), read through a cluster client.
    """
    from jobqueue.redis._shards import namespace, shard_of_id

    found: dict[str, StoredJob | None] = {}
    for start in range(0, len(ids), 1_000):
        chunk = ids[start : start + 1_000]
        pipe = client.pipeline(transaction=False)
        for job_id in chunk:
            ns = namespace(prefix, shard_of_id(job_id, shards), shards)
            pipe.hmget(f"{ns}j:{job_id}", "s", "a", "r", "err")
        for job_id, (s, a, r, err) in zip(chunk, pipe.execute(), strict=True):
            # A job never claimed has no 'a' field yet (docs/redis-data-model.md).
            found[job_id] = None if s is None else StoredJob(job_id, int(s), int(a or 0), r, err)
    return found


def stored_job_ids(client: redis.Redis, prefix: str) -> set[str]:
    marker = f"{{{prefix}}}:j:"
    return {
        key.decode()[len(marker) :] for key in client.scan_iter(match=marker + "*", count=1_000)
    }


def wait_terminal(
    client: redis.Redis | redis.RedisCluster,
    prefix: str,
    ids: Iterable[str],
    *,
    timeout_s: float,
    shards: int = 1,
) -> dict[str, StoredJob | None]:
    """Poll until every job is COMPLETED, FAILED or CANCELLED (or the time is up)."""
    wanted = list(ids)
    deadline = time.monotonic() + timeout_s
    while True:
        jobs = read_jobs(client, prefix, wanted, shards=shards)
        if all(job is not None and job.status >= 3 for job in jobs.values()):
            return jobs
        if time.monotonic() > deadline:
            return jobs
        time.sleep(0.2)


def summarize(jobs: dict[str, StoredJob | None]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for job in jobs.values():
        counts["MISSING" if job is None else STATUS_NAMES[job.status]] += 1
    return dict(counts)


@dataclass
class LedgerCheck:
    """What the ledger says about a set of acknowledged jobs."""

    enqueued: int
    completed: int
    lost: list[str]
    ran_twice: list[str]
    unexplained_reruns: list[str]
    stale_results: list[str]
    never_ran: list[str]

    @property
    def duplicated(self) -> int:
        return len(self.ran_twice)


def check_ledger(
    jobs: dict[str, StoredJob | None],
    runs: dict[str, list[Run]],
    *,
    killed_pids: Iterable[int] = (),
    explained: set[str] | None = None,
) -> LedgerCheck:
    """Cross-check stored jobs against handler runs.

    - lost: acknowledged but missing, or not COMPLETED;
    - a re-run is explained when every earlier run was on a worker killed later
      (it died while running the job, or before its verdict was stored), or the
      job is in ``explained`` (a fault the scenario knows made it run again);
    - stale result: the stored result is not the one of the run with the
      stored attempt number, i.e. an older lease's verdict overwrote a newer one;
    - attempt numbers never go down from one run to the next. Two runs may
      share a number only when the first one's worker was killed before it
      renewed or settled: its lease was never confirmed, so the store gave the
      attempt back (``MAX_UNCONFIRMED_DELIVERIES``). That the two runs were
      not one claim handed to two workers at once is ``_timeline``'s
      overlap check.
    """
    killed = set(killed_pids)
    explained = explained or set()
    lost, ran_twice, unexplained, stale, never = [], [], [], [], []
    completed = 0
    for job_id, job in jobs.items():
        job_runs = runs.get(job_id, [])
        if job is None or job.status != 3:
            lost.append(job_id)
            continue
        completed += 1
        if not job_runs:
            never.append(job_id)
            continue
        if len(job_runs) > 1:
            ran_twice.append(job_id)
            earlier = job_runs[:-1]
            by_start = sorted(job_runs, key=lambda run: run.started_ns)
            went_down = any(b.attempt < a.attempt for a, b in itertools.pairwise(by_start))
            if job_id not in explained and (
                went_down or not all(run.pid in killed for run in earlier)
            ):
                unexplained.append(job_id)
        last = job_runs[-1]
        if job.result != f"{last.pid}:{last.attempt}".encode() or job.attempts != last.attempt:
            stale.append(job_id)
    return LedgerCheck(
        enqueued=len(jobs),
        completed=completed,
        lost=lost,
        ran_twice=ran_twice,
        unexplained_reruns=unexplained,
        stale_results=stale,
        never_ran=never,
    )

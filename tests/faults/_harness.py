"""Real processes for the fault scenarios, the execution ledger, and the job checks.

Everything binds 127.0.0.1 only. Every wait here is bounded in time.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests._redis_server import free_port

ROOT = Path(__file__).resolve().parents[2]
WORKER_SCRIPT = Path(__file__).with_name("ledger_worker.py")

LONG = os.environ.get("JOBQUEUE_FAULTS_LONG") == "1"
"""``JOBQUEUE_FAULTS_LONG=1``: the long version of every scenario (minutes, not seconds)."""

SERVING = health_pb2.HealthCheckResponse.SERVING

STATUS_NAMES = {1: "PENDING", 2: "RUNNING", 3: "COMPLETED", 4: "FAILED", 5: "CANCELLED"}

FAST_CHANNEL_OPTIONS = [
    # gRPC's default reconnect backoff starts at 1 s and grows to 120 s; a
    # client that wants to ride out a server restart in seconds shortens it.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1_000),
]


def scale(short: int, long: int) -> int:
    return long if LONG else short


def report(scenario: str, **figures: object) -> None:
    """Print a scenario's figures; append them as JSON to ``$JOBQUEUE_FAULTS_REPORT`` if set."""
    record = {"scenario": scenario, "long": LONG, **figures}
    line = json.dumps(record, sort_keys=True)
    print(f"\nFAULTS {line}")
    target = os.environ.get("JOBQUEUE_FAULTS_REPORT")
    if target:
        with open(target, "a", encoding="utf-8") as out:
            out.write(line + "\n")


def rss_kib(pid: int) -> int:
    """Resident set size of a process, from /proc; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return 0
    return 0


# -- processes -------------------------------------------------------------------


class ServerProc:
    """``python -m jobqueue_server`` over Redis on a free loopback port; output to a file."""

    def __init__(
        self,
        *,
        redis_url: str,
        prefix: str,
        log_dir: Path,
        port: int | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = port or free_port()
        self.log_dir = log_dir
        self.env = {
            **os.environ,
            "JOBQUEUE_HOST": "127.0.0.1",
            "JOBQUEUE_PORT": str(self.port),
            "JOBQUEUE_REDIS_URL": redis_url,
            "JOBQUEUE_KEY_PREFIX": prefix,
            "JOBQUEUE_SHUTDOWN_GRACE_SECONDS": "2",
            "JOBQUEUE_LOG_LEVEL": "WARNING",
            **(env or {}),
        }
        self.env.pop("REDIS_ADDR", None)
        self.env.pop("JOBQUEUE_REDIS_ADDR", None)
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, *, wait: bool = True) -> None:
        self.starts += 1
        log = open(self.log_dir / f"server-{self.starts}.log", "wb")  # noqa: SIM115
        with log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "jobqueue_server"],
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if wait:
            wait_serving(self.port, timeout_s=20)

    def stop(self, signum: int = signal.SIGTERM, timeout_s: float = 15) -> int | None:
        process, self.process = self.process, None
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signum)
        try:
            return process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
            return None

    def output(self) -> str:
        return "".join(
            path.read_text(errors="replace") for path in sorted(self.log_dir.glob("server-*.log"))
        )


def health(port: int, timeout_s: float = 1.0) -> int | None:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=timeout_s
            )
        except grpc.RpcError:
            return None
        status: int = response.status
        return status


def wait_serving(port: int, timeout_s: float) -> float:
    """Wait until health answers SERVING; returns the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if health(port, timeout_s=0.5) == SERVING:
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"the server on port {port} did not turn SERVING in {timeout_s} s")


@dataclass
class WorkerPool:
    """Ledger worker processes, killed and replaced at will.

    Several pools may share one ledger folder (say, one per faked clock): each
    names its log files after ``name``, and ``env`` is added to the
    environment of each of its processes.
    """

    ledger_dir: Path
    args: list[str]
    env: dict[str, str] | None = None
    name: str = "worker"
    processes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    killed: dict[int, int] = field(default_factory=dict)
    """pid → monotonic time (ns) by which its SIGKILL had taken effect."""
    exited: dict[int, int] = field(default_factory=dict)
    """pid → monotonic time (ns) by which the process was known dead, however it ended."""
    started: int = 0

    def spawn(self) -> int:
        self.started += 1
        log = open(self.ledger_dir / f"{self.name}-{self.started}.log", "wb")  # noqa: SIM115
        with log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    str(WORKER_SCRIPT),
                    "--ledger-dir",
                    str(self.ledger_dir),
                    *self.args,
                ],
                cwd=ROOT,
                env={**os.environ, **self.env} if self.env else None,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.processes[process.pid] = process
        return process.pid

    def spawn_many(self, count: int, *, timeout_s: float = 20) -> list[int]:
        pids = [self.spawn() for _ in range(count)]
        deadline = time.monotonic() + timeout_s
        while not all((self.ledger_dir / f"ready-{pid}").exists() for pid in pids):
            for pid in pids:
                code = self.processes[pid].poll()
                if code is not None:
                    raise AssertionError(f"worker {pid} exited with {code}: {self.log_of(pid)}")
            if time.monotonic() > deadline:
                raise AssertionError("workers did not start in time")
            time.sleep(0.05)
        return pids

    def wait_ready(self, timeout_s: float = 20) -> None:
        """Wait until every live worker has registered its handlers (and its signal handlers)."""
        deadline = time.monotonic() + timeout_s
        while not all((self.ledger_dir / f"ready-{pid}").exists() for pid in self.alive):
            if time.monotonic() > deadline:
                raise AssertionError("workers did not start in time")
            time.sleep(0.05)

    def kill(self, pid: int) -> None:
        process = self.processes.pop(pid)
        process.kill()
        process.wait(10)
        # Taken after wait(): every run of that process had ended by then.
        self.killed[pid] = self.exited[pid] = time.monotonic_ns()

    def terminate(self, pid: int, timeout_s: float = 15) -> int | None:
        """SIGTERM one worker (a graceful stop) and wait; its exit code (None: killed)."""
        process = self.processes.pop(pid)
        process.send_signal(signal.SIGTERM)
        try:
            code: int | None = process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
            code = None
        self.exited[pid] = time.monotonic_ns()
        return code

    @property
    def alive(self) -> list[int]:
        return [pid for pid, process in self.processes.items() if process.poll() is None]

    def log_of(self, pid: int) -> str:
        # Log files are numbered by start order, not by pid: return them all, trimmed.
        text = "".join(
            path.read_text(errors="replace")[-2000:]
            for path in sorted(self.ledger_dir.glob(f"{self.name}-*.log"))
        )
        return text[-8000:]

    def stop_all(self, timeout_s: float = 15) -> dict[int, int | None]:
        """SIGTERM every worker and wait; returns each exit code (None: it had to be killed)."""
        codes: dict[int, int | None] = {}
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for pid, process in self.processes.items():
            try:
                codes[pid] = process.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
                codes[pid] = None
            self.exited[pid] = time.monotonic_ns()
        self.processes.clear()
        return codes


# -- the ledger -----------------------------------------------------------------


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


def new_prefix() -> str:
    return f"jqfault-{uuid.uuid4().hex[:10]}"


async def sleep_until(deadline: float) -> None:
    remaining = deadline - time.monotonic()
    if remaining > 0:
        await asyncio.sleep(remaining)


# -- producers ------------------------------------------------------------------

RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


@dataclass
class ProducerLog:
    """What the clients saw: acknowledged jobs, and every failed call by status."""

    acked: dict[str, str] = field(default_factory=dict)
    """idempotency key → the job id EnqueueJob acknowledged."""
    ids_per_key: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    wrong: list[str] = field(default_factory=list)
    """Answers that were neither a correct job nor a retryable error."""
    slowest_call_s: float = 0.0
    gave_up: int = 0
    first_error_at: float | None = None
    last_error_at: float | None = None
    acked_at: list[float] = field(default_factory=list)
    due_ns: dict[str, int] = field(default_factory=dict)
    """job id → when a scheduled job falls due, on this host's monotonic clock (ns)."""

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


async def produce(
    target: str,
    *,
    run: str,
    tasks: int,
    count: int | None = None,
    duration_s: float | None = None,
    rate: float | None = None,
    job_type: str = "work",
    call_timeout_s: float = 5.0,
    retry_for_s: float = 30.0,
    log: ProducerLog | None = None,
    delay_ms: Callable[[int], int | None] | None = None,
    max_attempts: int | None = None,
) -> ProducerLog:
    """``tasks`` concurrent producers enqueueing over one channel, each job with its own key.

    A call that fails UNAVAILABLE or DEADLINE_EXCEEDED is retried with the same
    idempotency key (its reply may have been lost after the job was stored),
    for at most ``retry_for_s``. Stops after ``count`` jobs or ``duration_s``.
    ``rate`` bounds the jobs per second over all tasks.

    ``delay_ms(index)``, when it returns a number, schedules that job: its
    ``execution_time_ms`` is this process's wall clock plus the delay, and the
    same moment on the monotonic clock goes to ``log.due_ns``, so a ledger run
    can be compared with it. ``max_attempts`` is set on every job.
    """
    from mpataki.jobqueue.v1 import jobqueue_pb2 as pb
    from mpataki.jobqueue.v1 import jobqueue_pb2_grpc as pb_grpc

    log = log or ProducerLog()
    deadline = None if duration_s is None else time.monotonic() + duration_s
    issued = 0
    pause = 0.0 if rate is None else tasks / rate

    async def one_task(stub: pb_grpc.JobServiceAsyncStub) -> None:
        nonlocal issued
        next_at = time.monotonic()
        while True:
            if count is not None and issued >= count:
                return
            if deadline is not None and time.monotonic() >= deadline:
                return
            index = issued
            issued += 1
            key = f"{run}-{index}"
            request = pb.EnqueueJobRequest(
                type=job_type, idempotency_key=key, max_attempts=max_attempts
            )
            due_ns = None
            delay = None if delay_ms is None else delay_ms(index)
            if delay is not None:
                wall_ns, mono_ns = time.time_ns(), time.monotonic_ns()
                request.execution_time_ms = wall_ns // 1_000_000 + delay
                due_ns = mono_ns + request.execution_time_ms * 1_000_000 - wall_ns
            give_up_at = time.monotonic() + retry_for_s
            while True:
                began = time.monotonic()
                try:
                    response = await stub.EnqueueJob(request, timeout=call_timeout_s)
                except grpc.aio.AioRpcError as error:
                    now = time.monotonic()
                    log.slowest_call_s = max(log.slowest_call_s, now - began)
                    log.errors[error.code().name] += 1
                    log.first_error_at = log.first_error_at or now
                    log.last_error_at = now
                    if error.code() not in RETRYABLE:
                        log.wrong.append(f"{key}: {error.code().name} {error.details()}")
                        break
                    if now > give_up_at:
                        log.gave_up += 1
                        break
                    await asyncio.sleep(0.05)
                    continue
                now = time.monotonic()
                log.slowest_call_s = max(log.slowest_call_s, now - began)
                job = response.job
                if job.type != job_type or job.idempotency_key != key or len(job.id) != 36:
                    log.wrong.append(f"{key}: answered {job}")
                log.acked[key] = job.id
                if due_ns is not None:
                    log.due_ns[job.id] = due_ns
                log.ids_per_key[key].add(job.id)
                log.acked_at.append(now)
                break
            if pause:
                next_at += pause
                await sleep_until(next_at)

    async with grpc.aio.insecure_channel(target, options=FAST_CHANNEL_OPTIONS) as channel:
        stub = pb_grpc.JobServiceStub(channel)
        await asyncio.gather(*(one_task(stub) for _ in range(tasks)))
    return log

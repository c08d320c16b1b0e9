"""What a worker through the server does not import (issue 17: its peak RSS).

A worker process on the server path (``Worker(server=...)``) runs real jobs
against an in-process server, then reports its ``sys.modules``. Each module
named here is one the worker has no use for: the direct path's stores, the
server's servicers and builder, the client SDK's clients and CLI, the
admin and schedule services' protos, and libraries only those need. Any of
them coming back (an eager ``__init__``, a module-level import) costs every
such worker resident memory; the measured figures are in docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from jobqueue.domain import JobService, JobStatus, SystemClock, UuidV7Generator
from jobqueue.memory import MemoryJobStore

from .conftest import start_test_server

ROOT = Path(__file__).resolve().parents[2]
JOBS = 3

NOT_IMPORTED = [
    # The direct path's stores and the other inbound adapters
    "jobqueue.redis",
    "jobqueue.memory",
    "jobqueue.connect",
    "jobqueue.dashboard",
    "jobqueue_server",
    # The server side of jobqueue.grpc: only the job mapping is shared
    "jobqueue.grpc._server",
    "jobqueue.grpc._job_servicer",
    "jobqueue.grpc._worker_servicer",
    "jobqueue.grpc._admin_servicer",
    "jobqueue.grpc._schedule_servicer",
    "jobqueue.grpc._health",
    # The client SDK's clients and command line: only its channel, retry and errors are shared
    "jobqueue.client._sync_client",
    "jobqueue.client._async_client",
    "jobqueue.client._admin_calls",
    "jobqueue.client._schedule_calls",
    "jobqueue.client._tracing",
    "jobqueue.client.cli",
    # Other services' protos and stubs
    "mpataki.jobqueue.v1.admin_pb2",
    "mpataki.jobqueue.v1.schedule_pb2",
    "mpataki.jobqueue.v1.jobqueue_pb2_grpc",
    "grpc_health.v1",
    "grpc_reflection.v1alpha",
    # Libraries none of the worker's path needs
    "click",
    "redis",
    "opentelemetry",
    "prometheus_client",
    "jsonschema",
    "importlib.metadata",
    "argparse",  # the worker command's parser
    "secrets",  # with hashlib and hmac, for a worker id's 4 random bytes
    "pathlib",  # for reading TLS files
    "urllib.parse",  # for redacting a Redis URL
    "zoneinfo",  # for cron ticks in the domain's schedules
    "uuid",  # with platform and sysconfig, for a non-canonical job id
]


async def test_a_server_path_worker_runs_jobs_without_what_it_does_not_need() -> None:
    store = MemoryJobStore()
    server = await start_test_server(store)
    try:
        service = JobService(store, clock=SystemClock(), ids=UuidV7Generator())
        jobs = [await service.enqueue("noop", b"") for _ in range(JOBS)]
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.worker._server_path_worker",
            cwd=ROOT,
            env={
                **os.environ,
                "JOBQUEUE_SERVER": f"127.0.0.1:{server.port}",
                "SERVER_PATH_JOBS": str(JOBS),
            },
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
        )
        stdout, _ = await asyncio.wait_for(process.communicate(), timeout=60)
        assert process.returncode == 0
        report = json.loads(stdout.decode().strip().splitlines()[-1])
        statuses = [getattr(await store.get(job.id), "status", None) for job in jobs]
    finally:
        await server.stop(grace_s=0)
        await store.close()
    assert report["ran"] == JOBS
    assert statuses == [JobStatus.COMPLETED] * JOBS
    loaded = set(report["modules"])
    assert "jobqueue.worker._grpc_source" in loaded  # it did take the server path
    assert sorted(name for name in NOT_IMPORTED if name in loaded) == []

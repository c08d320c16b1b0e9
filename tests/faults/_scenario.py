"""What every fault scenario shares: its length (short or ``JOBQUEUE_FAULTS_LONG=1``), its report,
its key prefix and the paths and constants of the processes it starts.

Everything binds 127.0.0.1 only. Every wait here is bounded in time.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from pathlib import Path

from grpc_health.v1 import health_pb2

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


def new_prefix() -> str:
    return f"jqfault-{uuid.uuid4().hex[:10]}"


async def sleep_until(deadline: float) -> None:
    remaining = deadline - time.monotonic()
    if remaining > 0:
        await asyncio.sleep(remaining)

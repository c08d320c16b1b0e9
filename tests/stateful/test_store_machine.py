"""Random operation sequences against each store, checked step by step against a plain model.

The entry points, one per store and layout: the memory store on a manual clock, one
Redis (with an hour's retention, and a 1 ms one), and a Redis Cluster on one shard
and over several. The machine and its timing rules are _store_machine.py, the
model _store_model.py.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

from jobqueue.domain import JobStore, SystemClock
from jobqueue.memory import MemoryJobStore, MemoryStoreSettings
from jobqueue.redis import RedisJobStore, RedisStoreSettings
from jobqueue.redis._shards import shard_of_type
from tests._redis_server import ClusterProcesses
from tests.stateful._store_machine import MACHINE_SETTINGS, TYPES, StoreMachine
from tests.stateful._time import HOUR_MS, ManualTime, RedisTime, Time

# Redis steps cost real round trips: fewer examples keep the run near what
# it was when the machine drove Redis with a manual clock (150 examples, and
# fewer jobs and expiries in each).
REDIS_SETTINGS = settings(MACHINE_SETTINGS, max_examples=100)
FORGETFUL_SETTINGS = settings(MACHINE_SETTINGS, max_examples=30)


def test_memory_store_matches_the_model() -> None:
    def make() -> tuple[JobStore, Time]:
        clock = ManualTime()
        settings_ = MemoryStoreSettings(retention_ms=clock.retention_ms)
        return MemoryJobStore(settings_, clock=clock.clock), clock

    class MemoryMachine(StoreMachine):
        make_store = staticmethod(make)

    run_state_machine_as_test(MemoryMachine, settings=MACHINE_SETTINGS)


def redis_machine(
    redis_url: str, *, retention_ms: int, cluster_url: str | None = None, shards: int = 1
) -> type[StoreMachine]:
    """The machine on one Redis, or on a Redis Cluster (``cluster_url``), over ``shards``."""
    shards_ = shards  # the class body below cannot read an enclosing name it also defines

    def make() -> tuple[JobStore, Time]:
        prefix = f"jqtest-sm-{uuid.uuid4().hex[:12]}"
        clock = RedisTime(redis_url, retention_ms=retention_ms)
        settings_ = RedisStoreSettings(
            url=cluster_url or redis_url,
            key_prefix=prefix,
            retention_ms=retention_ms,
            shards=shards,
        )
        return RedisJobStore(settings_, clock=SystemClock()), clock

    class RedisMachine(StoreMachine):
        make_store = staticmethod(make)
        exact_claim_order = shards_ == 1
        shards = shards_

    return RedisMachine


def test_redis_store_matches_the_model(redis_url: str) -> None:
    machine = redis_machine(redis_url, retention_ms=HOUR_MS)
    run_state_machine_as_test(machine, settings=REDIS_SETTINGS)


def test_redis_store_forgets_finished_jobs_as_the_model_does(redis_url: str) -> None:
    # Retention as short as the short leases: each finished job is gone by
    # the next check (the machine waits the 1 ms out), as the model says.
    machine = redis_machine(redis_url, retention_ms=1)
    run_state_machine_as_test(machine, settings=FORGETFUL_SETTINGS)


# A cluster's start and its client's round trips cost more: fewer examples.
CLUSTER_SETTINGS = settings(MACHINE_SETTINGS, max_examples=50)


@pytest.fixture(scope="module")
def cluster() -> Iterator[ClusterProcesses]:
    if os.environ.get("JOBQUEUE_SKIP_REDIS_TESTS") == "1":
        pytest.skip("JOBQUEUE_SKIP_REDIS_TESTS=1")
    if os.environ.get("JOBQUEUE_SKIP_CLUSTER_TESTS") == "1":
        pytest.skip("JOBQUEUE_SKIP_CLUSTER_TESTS=1")
    nodes = ClusterProcesses()
    try:
        nodes.start()
        yield nodes
    finally:
        nodes.close()


def test_redis_cluster_store_matches_the_model(cluster: ClusterProcesses) -> None:
    """The same machine on 3 masters + 3 replicas, through the cluster client.

    With one shard: the model pins claim.lua's exact order of leases across
    types, which a claim spanning shards does not keep (its leases come shard
    by shard); the test below runs the machine over several.
    """
    first_node = f"redis://127.0.0.1:{cluster.nodes[0].port}/0"  # TIME: one host, one clock
    machine = redis_machine(first_node, retention_ms=HOUR_MS, cluster_url=cluster.url)
    run_state_machine_as_test(machine, settings=CLUSTER_SETTINGS)


CLUSTER_SHARDS = 8
"""The machine's types a, b and c fall in shards 3, 1 and 7 of 8 (crc32 % 8)."""


def test_redis_cluster_store_over_shards_matches_the_model(cluster: ClusterProcesses) -> None:
    """The machine over 8 shards: every type in a shard of its own, every claim a fan-out."""
    assert len({shard_of_type(t, CLUSTER_SHARDS) for t in TYPES}) == len(TYPES)
    first_node = f"redis://127.0.0.1:{cluster.nodes[0].port}/0"
    machine = redis_machine(
        first_node, retention_ms=HOUR_MS, cluster_url=cluster.url, shards=CLUSTER_SHARDS
    )
    run_state_machine_as_test(machine, settings=CLUSTER_SETTINGS)

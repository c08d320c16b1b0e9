"""On a single Redis no slot migrates: the scripts skip their probes (``PROBE`` in _common.lua).

A probe reads (EXISTS) every key a step will write before it writes any, so
that on a cluster a slot moving mid-script fails the step before its first
write (tests/redis/test_reshard_probes.py). Elsewhere it is pure cost: a
third of a single add's script time. Counted on a Redis of this test's own,
so no other test's commands mix in.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from jobqueue.domain import JobService, Outcome, OutcomeKind, SystemClock, UuidV7Generator
from jobqueue.redis import RedisJobStore, RedisStoreSettings
from jobqueue.redis._core import _SCRIPTS
from tests._redis_server import RedisProcess

pytestmark = pytest.mark.redis


@pytest.fixture
def own_redis() -> Iterator[str]:
    process = RedisProcess()
    process.start()
    try:
        yield process.url
    finally:
        process.close()


def test_only_the_cluster_scripts_probe() -> None:
    for name, source in _SCRIPTS[False].items():
        assert "local PROBE = true" not in source, name
        if "probe(" in source:
            assert "local PROBE = false\n" in source, name
    probing = [name for name, source in _SCRIPTS[True].items() if "probe(" in source]
    assert "add" in probing
    assert "settle" in probing
    for name in probing:
        assert "local PROBE = true\n" in _SCRIPTS[True][name], name


async def test_a_job_enqueued_claimed_and_settled_costs_no_probe(own_redis: str) -> None:
    store = RedisJobStore(RedisStoreSettings(url=own_redis), clock=SystemClock())
    service = JobService(store, clock=SystemClock(), ids=UuidV7Generator())
    raw = redis.Redis.from_url(own_redis)
    try:
        await service.enqueue("probe.warm", b"")  # scripts loaded, config written
        raw.config_resetstat()
        for _ in range(3):
            await service.enqueue("probe.count", b"x")
        leases = await store.claim(["probe.count"], limit=3, lease_ms=30_000)
        assert len(leases) == 3
        applied = await store.settle(
            [
                Outcome(job_id=lease.job.id, token=lease.token, kind=OutcomeKind.COMPLETE)
                for lease in leases
            ]
        )
        assert applied == [True, True, True]
        stats = raw.info("commandstats")
        assert "cmdstat_evalsha" in stats  # the steps ran as scripts
        assert "cmdstat_exists" not in stats, stats["cmdstat_exists"]
    finally:
        raw.close()
        await store.close()

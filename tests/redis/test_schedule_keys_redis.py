"""How Redis keeps a CreateSchedule key: sk:<type>/<key>, 24 h, gone with its schedule."""

from __future__ import annotations

import redis.asyncio as aioredis

from jobqueue.domain import (
    SCHEDULE_KEY_WINDOW_MS,
    JobTemplate,
    ScheduleService,
    SystemClock,
    UuidV7Generator,
)
from jobqueue.redis import RedisJobStore, RedisScheduleStore, RedisStoreSettings
from jobqueue_server._cron import CronsimParser


async def test_the_key_expires_after_its_window_and_goes_with_its_schedule(
    redis_url: str, key_prefix: str
) -> None:
    jobs = RedisJobStore(RedisStoreSettings(url=redis_url, key_prefix=key_prefix))
    schedules = ScheduleService(
        RedisScheduleStore(jobs),
        jobs,
        cron=CronsimParser(),
        clock=SystemClock(),
        ids=UuidV7Generator(),
    )
    raw = aioredis.Redis.from_url(redis_url)
    name = f"{{{key_prefix}}}:sk:report/deploy-7"
    try:
        made = await schedules.create(
            name="r",
            template=JobTemplate(type="report"),
            interval_ms=60_000,
            idempotency_key="deploy-7",
        )
        assert await raw.get(name) == made.id.encode()
        assert SCHEDULE_KEY_WINDOW_MS - 60_000 < await raw.pttl(name) <= SCHEDULE_KEY_WINDOW_MS
        assert await raw.hget(f"{{{key_prefix}}}:sc:{made.id}", "ik") == b"deploy-7"
        await schedules.delete(made.id)
        assert await raw.exists(name) == 0
    finally:
        await raw.aclose()
        await jobs.close()

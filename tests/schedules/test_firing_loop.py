"""The server's firing loop while the store is down: it backs off and says so in a few lines."""

from __future__ import annotations

import asyncio
import logging
from typing import cast

import pytest

from jobqueue.domain import Job, ScheduleService, StoreUnavailable
from jobqueue_server._schedules import fire_forever


class DownThenUp:
    """A ScheduleService whose first ``failures`` rounds find the store down."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.rounds = 0
        self.recovered = asyncio.Event()

    async def fire_due(self) -> list[Job]:
        self.rounds += 1
        if self.rounds <= self.failures:
            raise StoreUnavailable("Redis is unreachable")
        self.recovered.set()
        return []


async def test_an_outage_is_a_few_lines_and_its_end_one(caplog: pytest.LogCaptureFixture) -> None:
    # Every 200 ms round logged a line: five a second for as long as Redis was down.
    service = DownThenUp(failures=61)
    caplog.set_level(logging.INFO, logger="jobqueue_server._schedules")
    task = asyncio.create_task(fire_forever(cast(ScheduleService, service), interval_s=0.0005))
    try:
        await asyncio.wait_for(service.recovered.wait(), 30)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    lines = [record.getMessage() for record in caplog.records]
    assert [line.split(" (")[0] for line in lines[:3]] == ["firing schedules failed"] * 3
    assert "(1 in a row)" in lines[0]
    assert "(30 in a row)" in lines[1]
    assert "(60 in a row)" in lines[2]
    assert lines[3:] == ["firing schedules works again after 61 failed rounds"]

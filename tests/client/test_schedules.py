"""Both clients' schedule calls against a real ``jobqueue-server`` process (in-memory store)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import grpc
import pytest

from jobqueue.client import (
    AsyncJobClient,
    InvalidJob,
    InvalidSchedule,
    JobClient,
    JobNotFound,
    JobTemplate,
    OverlapPolicy,
    Schedule,
    ScheduleNotFound,
    ServerUnavailable,
)
from mpataki.jobqueue.v1 import schedule_pb2 as spb
from tests.client.conftest import FAST_RETRY

pytestmark = pytest.mark.integration

MISSING_ID = "01900000-0000-7000-8000-000000000000"


def unique(name: str) -> str:
    """A job type of this test alone: the module shares one server."""
    return f"{name}.{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def aclient(target: str) -> AsyncIterator[AsyncJobClient]:
    async with AsyncJobClient(target=target, timeout_s=5, retries=FAST_RETRY) as client:
        yield client


async def test_create_get_list_pause_resume_trigger_delete(aclient: AsyncJobClient) -> None:
    job_type = unique("sdk.report")
    before = datetime.now(UTC) - timedelta(seconds=1)
    created = await aclient.create_schedule(
        "nightly report",
        job_type,
        {"kind": "daily"},
        cron="30 2 * * *",
        time_zone="Europe/Paris",
        overlap="buffer_one",
        catchup_window_s=timedelta(minutes=5),
        headers={"tenant": "acme"},
        max_attempts=3,
    )
    assert isinstance(created, Schedule)
    assert created.name == "nightly report"
    assert (created.cron, created.interval_s, created.time_zone) == (
        "30 2 * * *",
        None,
        "Europe/Paris",
    )
    assert created.template == JobTemplate(
        type=job_type, payload=b'{"kind":"daily"}', headers={"tenant": "acme"}, max_attempts=3
    )
    assert created.overlap is OverlapPolicy.BUFFER_ONE
    assert created.catchup_window_s == 300.0
    assert not created.paused
    assert created.created_at >= before
    assert (created.fired, created.skipped_overlap, created.missed) == (0, 0, 0)

    shown = await aclient.get_schedule(created.id)
    # The servers' firing loop may have planned the next tick since: 02:30 in Paris.
    assert dataclasses.replace(shown, next_tick_at=None) == created
    if shown.next_tick_at is not None:
        local = shown.next_tick_at.astimezone(ZoneInfo("Europe/Paris"))
        assert (local.hour, local.minute) == (2, 30)
    assert created.id in {s.id for s in await aclient.list_schedules()}

    paused = await aclient.pause_schedule(created.id)
    assert paused.paused
    assert paused.next_tick_at is None
    assert (await aclient.pause_schedule(created.id)).paused  # idempotent
    assert not (await aclient.resume_schedule(created.id)).paused

    job_id = await aclient.trigger_schedule(created.id)
    job = await aclient.get(job_id)
    assert (job.type, job.payload, job.max_attempts) == (job_type, b'{"kind":"daily"}', 3)

    await aclient.delete_schedule(created.id)
    assert created.id not in {s.id for s in await aclient.list_schedules()}
    assert (await aclient.get(job_id)).id == job_id  # the jobs it enqueued stay


async def test_a_missing_schedule_is_not_found_on_every_call(aclient: AsyncJobClient) -> None:
    for call in (
        aclient.get_schedule,
        aclient.pause_schedule,
        aclient.resume_schedule,
        aclient.trigger_schedule,
        aclient.delete_schedule,
    ):
        with pytest.raises(ScheduleNotFound) as caught:
            await call(MISSING_ID)
        assert caught.value.schedule_id == MISSING_ID
        assert caught.value.code == "NOT_FOUND"
        assert isinstance(caught.value, JobNotFound)  # handlers of "not found" catch it too


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"cron": "61 * * * *"}, "cron"),
        ({"cron": "every day"}, "cron"),
        ({}, "cron"),  # neither a cron expression nor an interval
        ({"interval_s": 0.5}, "interval_s"),
        ({"interval_s": 60, "catchup_window_s": 8 * 86400}, "catchup_window_s"),
        ({"interval_s": 60, "catchup_window_s": 0}, "catchup_window_s"),  # not "the default"
        ({"cron": "* * * * *", "time_zone": "Mars/Olympus_Mons"}, "time_zone"),
        ({"cron": "* * * * *", "name": ""}, "name"),
        ({"cron": "* * * * *", "type": "no spaces allowed"}, "type"),
        ({"cron": "* * * * *", "max_attempts": 0}, "max_attempts"),
        ({"cron": "* * * * *", "headers": {"": "x"}}, "headers"),
    ],
)
async def test_bad_input_names_the_argument_and_stores_nothing(
    aclient: AsyncJobClient, arguments: dict[str, Any], field: str
) -> None:
    name = arguments.pop("name", "bad")
    job_type = arguments.pop("type", unique("sdk.bad"))
    before = await aclient.list_schedules()
    with pytest.raises(InvalidSchedule) as caught:
        await aclient.create_schedule(name, job_type, **arguments)
    assert caught.value.field == field
    assert caught.value.code == "INVALID_ARGUMENT"
    assert isinstance(caught.value, InvalidJob)
    assert await aclient.list_schedules() == before


async def test_cron_and_interval_together_are_refused_before_sending(
    aclient: AsyncJobClient,
) -> None:
    with pytest.raises(ValueError, match="not both"):
        await aclient.create_schedule("both", "t", cron="* * * * *", interval_s=60)
    with pytest.raises(ValueError, match="sometimes"):
        await aclient.create_schedule("bad overlap", "t", cron="* * * * *", overlap="sometimes")


async def test_an_interval_schedule_fires_each_tick_once(aclient: AsyncJobClient) -> None:
    # The server's firing loop enqueues one job per tick, keyed by the schedule and tick.
    job_type = unique("sdk.tick")
    created = await aclient.create_schedule(
        "every second", job_type, "x", interval_s=1, overlap=OverlapPolicy.ALLOW_ALL
    )
    deadline = time.monotonic() + 15
    jobs = []
    while time.monotonic() < deadline:
        jobs = [job async for job in aclient.list(job_type)]
        if len(jobs) >= 2:
            break
        await asyncio.sleep(0.1)
    shown = await aclient.get_schedule(created.id)
    await aclient.delete_schedule(created.id)
    assert len(jobs) >= 2
    keys = [job.idempotency_key for job in jobs]
    assert len(set(keys)) == len(keys)
    assert all(key and key.startswith(f"schedule:{created.id}:") for key in keys)
    assert shown.fired >= len(jobs)
    assert shown.last_tick_at is not None
    assert shown.last_job_id is not None


def test_the_blocking_client_offers_the_same_calls(target: str) -> None:
    job_type = unique("sdk.sync")
    with JobClient(target=target, timeout_s=5, retries=FAST_RETRY) as client:
        created = client.create_schedule("sync", job_type, interval_s=timedelta(hours=1))
        assert created.interval_s == 3600.0
        assert created.every == "every 1h"
        assert client.get_schedule(created.id).id == created.id
        assert created.id in {s.id for s in client.list_schedules()}
        assert client.pause_schedule(created.id).paused
        assert not client.resume_schedule(created.id).paused
        job = client.get(client.trigger_schedule(created.id))
        assert job.type == job_type
        client.delete_schedule(created.id)
        with pytest.raises(ScheduleNotFound):
            client.get_schedule(created.id)


class Scripted:
    """A ScheduleService answering each method from a script of status codes; the last repeats.

    An OK answer is the method's empty response message, which every one of
    the methods scripted here may answer.
    """

    def __init__(self, script: dict[str, list[grpc.StatusCode]]) -> None:
        self.script = script
        self.calls: dict[str, int] = {}
        self.requests: dict[str, list[bytes]] = {}

    def handler(self, method: str) -> grpc.RpcMethodHandler[Any, Any]:
        async def answer(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
            count = self.calls[method] = self.calls.get(method, 0) + 1
            self.requests.setdefault(method, []).append(request)
            answers = self.script[method]
            code = answers[min(count, len(answers)) - 1]
            if code is grpc.StatusCode.OK:
                return b""
            await context.abort(code, f"{code.name} (test)")
            raise AssertionError("abort returns by raising")

        return grpc.unary_unary_rpc_method_handler(answer)

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[AsyncJobClient]:
        """The service on a loopback port, and a client of it with quick retries."""
        server = grpc.aio.server()
        handlers = {method: self.handler(method) for method in self.script}
        server.add_generic_rpc_handlers(
            [grpc.method_handlers_generic_handler("mpataki.jobqueue.v1.ScheduleService", handlers)]
        )
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with AsyncJobClient(target=f"127.0.0.1:{port}", retries=FAST_RETRY) as client:
                yield client
        finally:
            await server.stop(None)


UNAVAILABLE = grpc.StatusCode.UNAVAILABLE
NOT_FOUND = grpc.StatusCode.NOT_FOUND


async def test_every_call_is_retried_create_and_trigger_under_one_key() -> None:
    # Create and trigger carry an idempotency key, the same on every attempt:
    # a retry after a lost reply answers the first attempt's result.
    methods = ["CreateSchedule", "TriggerSchedule", "GetSchedule", "DeleteSchedule"]
    service = Scripted({method: [UNAVAILABLE] for method in methods})
    async with service.serving() as client:
        with pytest.raises(ServerUnavailable):
            await client.create_schedule("s", "t", interval_s=60)
        with pytest.raises(ServerUnavailable):
            await client.trigger_schedule(MISSING_ID)
        with pytest.raises(ServerUnavailable):
            await client.get_schedule(MISSING_ID)
        with pytest.raises(ServerUnavailable):
            await client.delete_schedule(MISSING_ID)
    retried = 1 + FAST_RETRY.max_retries
    assert service.calls == dict.fromkeys(methods, retried)
    creates = {
        spb.CreateScheduleRequest.FromString(raw).idempotency_key
        for raw in service.requests["CreateSchedule"]
    }
    triggers = {
        spb.TriggerScheduleRequest.FromString(raw).idempotency_key
        for raw in service.requests["TriggerSchedule"]
    }
    for keys in (creates, triggers):
        assert len(keys) == 1
        assert keys != {""}


async def test_a_retried_delete_that_finds_nothing_succeeds() -> None:
    # The first attempt's reply was lost; the retry finds the schedule gone,
    # most likely deleted by that very attempt: what the caller asked for.
    service = Scripted(
        {
            "DeleteSchedule": [UNAVAILABLE, NOT_FOUND],
            "ListSchedules": [grpc.StatusCode.OK],
            "GetSchedule": [UNAVAILABLE, NOT_FOUND],
        }
    )
    async with service.serving() as client:
        await client.delete_schedule(MISSING_ID)  # no error: it is gone, as asked
        assert service.calls == {"DeleteSchedule": 2, "ListSchedules": 1}
        with pytest.raises(ScheduleNotFound):  # a read has no such excuse
            await client.get_schedule(MISSING_ID)


async def test_a_first_delete_that_finds_nothing_is_not_found() -> None:
    service = Scripted({"DeleteSchedule": [NOT_FOUND], "ListSchedules": [grpc.StatusCode.OK]})
    async with service.serving() as client:
        with pytest.raises(ScheduleNotFound):
            await client.delete_schedule(MISSING_ID)
    assert service.calls == {"DeleteSchedule": 1}


def test_the_operations_guides_python_snippet_runs_as_written(target: str) -> None:
    # docs/operations.md's schedule calls, against this server instead of localhost:8080.
    guide = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text("utf-8")
    section = guide.split("### Schedules from the command line and from Python\n", 1)[1]
    found = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert found, "the schedules section has no python block"
    code = found.group(1).replace('"localhost:8080"', repr(target))
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "nightly report 30 2 * * *" in done.stdout
    assert "heartbeat every 30s" in done.stdout
    assert done.stdout.rstrip().endswith("is gone")


@pytest.mark.parametrize(
    ("interval_s", "shown"),
    [(30, "every 30s"), (90, "every 1m30s"), (5415, "every 1h30m15s"), (1.5, "every 1.5s")],
)
def test_an_interval_reads_as_the_cli_takes_it(interval_s: float, shown: str) -> None:
    schedule = Schedule(
        id="s",
        name="n",
        template=JobTemplate(type="t"),
        interval_s=interval_s,
        created_at=datetime.now(UTC),
    )
    assert schedule.every == shown

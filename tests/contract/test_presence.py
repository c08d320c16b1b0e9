"""The PresenceStore contract (worker heartbeats and the live-worker list), on every store.

A worker is listed from its heartbeat until the store's clock passes its own
time to live, or until it deregisters; the store stamps ``last_seen_at_ms``
with its own clock. Stats count the live workers of each type and say how
long the oldest due job has waited.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from jobqueue.domain import (
    MAX_WORKER_TYPES,
    InvalidJob,
    JobStore,
    PresenceService,
    PresenceStore,
    WorkerInfo,
)
from tests.contract.conftest import MakeJob, Passage

TTL = 30_000


def presence(store: JobStore) -> PresenceStore:
    assert isinstance(store, PresenceStore)
    return store


def worker(worker_id: str = "host-1-abc", *types: str, busy: int = 0) -> WorkerInfo:
    return WorkerInfo(
        id=worker_id,
        host="host",
        pid=1234,
        sdk="jobqueue-python/0.1.0",
        types=types or ("email",),
        concurrency=10,
        busy=busy,
        started_at_ms=1_700_000_000_000,
        last_seen_at_ms=42,  # the store's clock decides, not this
    )


async def test_a_heartbeat_lists_the_worker_stamped_by_the_store_clock(
    store: JobStore, passage: Passage
) -> None:
    before = await passage.now_ms()
    stored = await presence(store).heartbeat(worker(busy=3), ttl_ms=TTL)
    after = await passage.now_ms()
    assert before <= stored.last_seen_at_ms <= after
    assert await presence(store).list_workers() == [stored]
    assert stored == replace(worker(busy=3), last_seen_at_ms=stored.last_seen_at_ms)


async def test_a_later_heartbeat_replaces_what_the_worker_said(
    store: JobStore, passage: Passage
) -> None:
    await presence(store).heartbeat(worker(busy=1), ttl_ms=TTL)
    await passage.advance(5)
    second = await presence(store).heartbeat(worker("host-1-abc", "sms", busy=7), ttl_ms=TTL)
    listed = await presence(store).list_workers()
    assert listed == [second]
    assert (listed[0].types, listed[0].busy) == (("sms",), 7)


async def test_workers_are_listed_by_id(store: JobStore) -> None:
    for worker_id in ("w-c", "w-a", "w-b"):
        await presence(store).heartbeat(worker(worker_id), ttl_ms=TTL)
    assert [w.id for w in await presence(store).list_workers()] == ["w-a", "w-b", "w-c"]


async def test_a_worker_disappears_when_its_ttl_passes_without_a_heartbeat(
    store: JobStore, passage: Passage
) -> None:
    ttl = 1_000 + passage.guard_ms
    await presence(store).heartbeat(worker("short"), ttl_ms=ttl)
    await presence(store).heartbeat(worker("long"), ttl_ms=TTL)
    await passage.advance(ttl - passage.guard_ms - 1)
    assert [w.id for w in await presence(store).list_workers()] == ["long", "short"]
    await passage.advance(passage.guard_ms + 1)
    assert [w.id for w in await presence(store).list_workers()] == ["long"]
    # A heartbeat after expiry lists it again, as a fresh registration.
    await presence(store).heartbeat(worker("short"), ttl_ms=TTL)
    assert [w.id for w in await presence(store).list_workers()] == ["long", "short"]


async def test_deregister_forgets_a_worker_at_once(store: JobStore) -> None:
    await presence(store).heartbeat(worker("a"), ttl_ms=TTL)
    await presence(store).heartbeat(worker("b"), ttl_ms=TTL)
    assert await presence(store).deregister("a") is True
    assert await presence(store).deregister("a") is False
    assert [w.id for w in await presence(store).list_workers()] == ["b"]


async def test_stats_count_live_workers_per_type_and_flag_a_type_nobody_handles(
    store: JobStore, make_job: MakeJob
) -> None:
    await store.add([make_job("email"), make_job("sms"), make_job("report")])
    await presence(store).heartbeat(worker("w1", "email", "sms"), ttl_ms=TTL)
    await presence(store).heartbeat(worker("w2", "email"), ttl_ms=TTL)
    rows = {row.type: row for row in (await store.stats()).types}
    assert {name: row.workers for name, row in rows.items()} == {
        "email": 2,
        "sms": 1,
        "report": 0,
    }
    assert [name for name, row in rows.items() if row.unattended] == ["report"]
    assert await presence(store).worker_counts() == {"email": 2, "sms": 1}
    await presence(store).deregister("w1")
    rows = {row.type: row for row in (await store.stats()).types}
    assert rows["sms"].workers == 0
    assert rows["sms"].unattended


async def test_stats_say_how_long_the_oldest_due_job_has_waited(
    store: JobStore, make_job: MakeJob, passage: Passage
) -> None:
    first = make_job("email")
    await store.add([first, make_job("email"), make_job("later", delay_ms=3_600_000)])
    await passage.advance(250)
    now = await passage.now_ms()
    rows = {row.type: row for row in (await store.stats()).types}
    # The producer stamped the job on its clock; the store measures on its own.
    assert 250 <= rows["email"].oldest_pending_age_ms <= now - first.execution_time_ms + 1
    assert rows["later"].oldest_pending_age_ms == 0
    assert (await store.stats()).total.oldest_pending_age_ms >= 250


async def test_a_job_due_long_before_it_was_made_has_waited_since_it_was_made(
    store: JobStore, make_job: MakeJob, passage: Passage
) -> None:
    # The Go original's README enqueues with execution_time_ms 1640000000000
    # ("due at once"): the age said years, and an alert on it fired at once.
    await store.add([make_job("backdated", delay_ms=-10 * 24 * 3_600_000)])
    await passage.advance(250)
    row = next(row for row in (await store.stats()).types if row.type == "backdated")
    assert row.pending == 1
    # 250 ms and the calls' own time, not ten days.
    assert 250 <= row.oldest_pending_age_ms <= 250 + 5_000, row.oldest_pending_age_ms


async def test_the_service_refuses_bad_heartbeats_and_stores_nothing(store: JobStore) -> None:
    service = PresenceService(presence(store))
    bad = [
        (worker("has space"), TTL, "worker.id"),
        (worker(""), TTL, "worker.id"),
        (worker("x" * 129), TTL, "worker.id"),
        (worker("ok"), 999, "ttl_ms"),
        (worker("ok"), 600_001, "ttl_ms"),
        (worker("ok", "bad type!"), TTL, "type"),
        (
            replace(worker("ok"), types=tuple(f"t{i}" for i in range(MAX_WORKER_TYPES + 1))),
            TTL,
            "worker.types",
        ),
        (replace(worker("ok"), busy=-1), TTL, "worker.busy"),
        # Shown in listings and on the dashboard: no escape sequences for the reader's terminal.
        (replace(worker("ok"), host="box\x1b[2J"), TTL, "worker.host"),
        (replace(worker("ok"), sdk="py\x07"), TTL, "worker.sdk"),
        (replace(worker("ok"), host="box\x9b"), TTL, "worker.host"),
        (replace(worker("ok"), concurrency=2, busy=3), TTL, "worker.busy"),
    ]
    for info, ttl, field in bad:
        with pytest.raises(InvalidJob) as raised:
            await service.heartbeat(info, ttl_ms=ttl)
        assert raised.value.field == field
    assert await service.list_workers() == []


async def test_busy_is_bounded_only_by_a_concurrency_the_worker_gave(store: JobStore) -> None:
    service = PresenceService(presence(store))
    await service.heartbeat(replace(worker("unsaid"), concurrency=0, busy=3), ttl_ms=TTL)
    await service.heartbeat(replace(worker("full"), concurrency=3, busy=3), ttl_ms=TTL)
    assert [(w.id, w.busy) for w in await service.list_workers()] == [("full", 3), ("unsaid", 3)]


async def test_the_service_defaults_the_ttl_and_deregisters_a_stopping_worker(
    store: JobStore,
) -> None:
    service = PresenceService(presence(store))
    stored = await service.heartbeat(worker("w", "email", "email", "sms"), ttl_ms=0)
    assert stored is not None
    assert stored.types == ("email", "sms")
    assert await service.workers_by_type() == {"email": 1, "sms": 1}
    assert await service.heartbeat(worker("w"), stopping=True) is None
    assert await service.list_workers() == []


async def test_the_age_is_the_queue_heads_so_a_backdated_head_hides_older_jobs(
    store: JobStore, make_job: MakeJob, passage: Passage
) -> None:
    # Both stores read the job a claim takes first (the earliest due), not every
    # job: one enqueued with a due time far back leads its queue, and has waited
    # only since it was made, however long the job behind it has waited.
    await store.add([make_job("mixed")])
    await passage.advance(1_000)
    await store.add([make_job("mixed", delay_ms=-10 * 24 * 3_600_000)])
    await passage.advance(250)
    row = next(row for row in (await store.stats()).types if row.type == "mixed")
    assert row.pending == 2
    assert 250 <= row.oldest_pending_age_ms < 1_000, row.oldest_pending_age_ms

"""Unique jobs through the SDK: enqueue(unique_key=, on_conflict=, unique_for=) on a real server."""

from __future__ import annotations

from datetime import timedelta

import pytest

from jobqueue.client import (
    AsyncJobClient,
    InvalidJob,
    JobAlreadyExists,
    JobSpec,
    JobStatus,
    OnConflict,
)
from tests.client.test_cli import assert_one_line_error, run_cli


async def test_a_held_key_returns_the_holder(client: AsyncJobClient) -> None:
    first = await client.enqueue("sync", {"customer": 42}, unique_key="sync:42")
    again = await client.enqueue("sync", {"customer": 42}, unique_key="sync:42")
    assert again.id == first.id
    assert again.unique_key == "sync:42"


async def test_reject_raises_already_exists_naming_the_holder(client: AsyncJobClient) -> None:
    holder = await client.enqueue("sync", unique_key="k", on_conflict="reject")
    with pytest.raises(JobAlreadyExists) as caught:
        await client.enqueue("sync", unique_key="k", on_conflict=OnConflict.REJECT)
    assert caught.value.code == "ALREADY_EXISTS"
    assert caught.value.holder_id == holder.id


async def test_replace_cancels_the_pending_holder(client: AsyncJobClient) -> None:
    old = await client.enqueue("sync", b"v1", unique_key="k", unique_for="pending")
    new = await client.enqueue(
        "sync", b"v2", unique_key="k", unique_for="pending", on_conflict="replace"
    )
    assert new.id != old.id
    replaced = await client.get(old.id)
    assert replaced.status is JobStatus.CANCELLED
    assert replaced.last_error == f"replaced by job {new.id}"


async def test_a_debounce_window_and_a_batch(client: AsyncJobClient) -> None:
    window = timedelta(minutes=5)
    (first,) = await client.enqueue_many([JobSpec("mail", unique_key="d", unique_for=window)])
    (again,) = await client.enqueue_many([JobSpec("mail", unique_key="d", unique_for=window)])
    assert again.id == first.id
    # One key twice in one batch is the caller's mistake: refused, nothing stored.
    with pytest.raises(InvalidJob, match=r"jobs\[1\]\.unique_key: repeats jobs\[0\]"):
        await client.enqueue_many(
            [JobSpec("mail", unique_key="e", unique_for=window) for _ in range(2)]
        )


async def test_bad_unique_options_are_invalid(client: AsyncJobClient) -> None:
    with pytest.raises(InvalidJob, match="unique_key"):
        await client.enqueue("sync", on_conflict="reject")
    with pytest.raises(InvalidJob, match="unique_window_ms"):
        await client.enqueue("sync", unique_key="k", unique_for=timedelta(0))
    with pytest.raises(ValueError, match="unique_for"):
        await client.enqueue("sync", unique_key="k", unique_for="forever")


def test_the_cli_submits_unique_jobs_and_shows_the_key(target: str) -> None:
    first = run_cli(target, "--json", "submit", "cli_unique", "--unique-key", "u1").json()
    assert first["unique_key"] == "u1"
    again = run_cli(target, "--json", "submit", "cli_unique", "--unique-key", "u1").json()
    assert again["id"] == first["id"]
    rejected = run_cli(
        target, "submit", "cli_unique", "--unique-key", "u1", "--on-conflict", "reject"
    )
    assert_one_line_error(rejected, 1, first["id"])
    shown = run_cli(target, "get", first["id"])
    assert "unique key" in shown.stdout
    assert "u1" in shown.stdout
    debounced = run_cli(
        target, "--json", "submit", "cli_unique", "--unique-key", "u2", "--unique-for", "30s"
    )
    assert debounced.code == 0, debounced
    bad = run_cli(target, "submit", "cli_unique", "--unique-key", "u3", "--unique-for", "soon")
    assert bad.code == 2

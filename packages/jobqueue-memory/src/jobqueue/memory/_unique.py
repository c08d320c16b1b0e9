"""Unique-key locks of the in-memory store, as plainly as the model states them.

A lock names its holder job. It is taken by ``add`` and dropped by the step
that moves the holder out of its scope: ``claim`` for PENDING and DEBOUNCE,
any finish for every scope (see jobqueue.domain's ``_unique``). A DEBOUNCE
lock also lapses ``window_ms`` after it was taken.
"""

from __future__ import annotations

from dataclasses import dataclass

from jobqueue.domain import Job, UniqueScope


def slot(job_type: str, key: str) -> str:
    """Where a job type's key is kept: unique and idempotency keys are per job type.

    As on Redis (``u:<type>/<key>``, ``k:<type>/<key>``), where a type's keys
    live in its shard; '/' never occurs in a type, so no two pairs collide.
    """
    return f"{job_type}/{key}"


def idempotency_slot(job: Job) -> str | None:
    """The job's idempotency key as kept (per type), or None."""
    key = job.idempotency_key
    return None if key is None else slot(job.type, key)


@dataclass(frozen=True, slots=True)
class UniqueLock:
    job_id: str
    expires_at_ms: int | None = None


def lock_holder(locks: dict[str, UniqueLock], key: str, now: int) -> str | None:
    """The id of the job holding ``key`` (a ``slot``) now, dropping a lapsed debounce lock."""
    lock = locks.get(key)
    if lock is None:
        return None
    if lock.expires_at_ms is not None and lock.expires_at_ms <= now:
        del locks[key]
        return None
    return lock.job_id


def take_lock(locks: dict[str, UniqueLock], job: Job, now: int) -> None:
    rule = job.unique
    if rule is not None:
        expires = now + rule.window_ms if rule.scope is UniqueScope.DEBOUNCE else None
        locks[slot(job.type, rule.key)] = UniqueLock(job.id, expires)


def release_lock(locks: dict[str, UniqueLock], job: Job, *, claimed: bool = False) -> None:
    """Drop the job's lock if it still holds it: at a finish, or at a claim unless ACTIVE."""
    rule = job.unique
    if rule is None or (claimed and rule.scope is UniqueScope.ACTIVE):
        return
    held = slot(job.type, rule.key)
    lock = locks.get(held)
    if lock is not None and lock.job_id == job.id:
        del locks[held]

"""Claim-time gates on a job type: pause and resume.

A gate is checked by the store inside its claim, in the same atomic step
that leases jobs, so a claim that starts after ``pause_type`` returned never
leases a job of that type, on any worker. Nothing else changes: producers
still enqueue (their jobs stay PENDING), running jobs finish and settle, and a
retry of a running job goes back to PENDING behind the gate. Resuming wakes
idle workers of the type, so its due jobs start within a round trip.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ._validation import validate_type


@runtime_checkable
class TypeGates(Protocol):
    """The store's side of pausing job types (both stores implement it)."""

    async def pause_type(self, job_type: str) -> bool:
        """Claims skip ``job_type`` from now on; False when it was paused already."""
        ...

    async def resume_type(self, job_type: str) -> bool:
        """Claims take ``job_type`` again; False when it was not paused."""
        ...

    async def paused_types(self) -> list[str]:
        """Every paused type, sorted by name."""
        ...


class GateService:
    """Pause and resume job types, with the type validated before the store sees it."""

    def __init__(self, store: TypeGates) -> None:
        self._store = store

    async def pause_type(self, job_type: str) -> bool:
        return await self._store.pause_type(validate_type(job_type))

    async def resume_type(self, job_type: str) -> bool:
        return await self._store.resume_type(validate_type(job_type))

    async def paused_types(self) -> list[str]:
        return await self._store.paused_types()

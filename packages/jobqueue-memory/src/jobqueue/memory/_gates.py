"""The in-memory store's claim-time gates: paused types (see ``jobqueue.domain.TypeGates``)."""

from __future__ import annotations

from ._core import _MemoryCore


class _GatesMixin(_MemoryCore):
    """Pause and resume job types; ``_claim_now`` skips a paused type."""

    async def pause_type(self, job_type: str) -> bool:
        if job_type in self._paused:
            return False
        self._paused.add(job_type)
        return True

    async def resume_type(self, job_type: str) -> bool:
        if job_type not in self._paused:
            return False
        self._paused.discard(job_type)
        # Idle claims of the type sleep until something changes: this does.
        self._wake()
        return True

    async def paused_types(self) -> list[str]:
        return sorted(self._paused)

"""Progress reports (jobqueue.domain.ProgressStore): progress.lua, one call per shard."""

from __future__ import annotations

from collections.abc import Sequence

from jobqueue.domain import ProgressReport

from ._core import Arg, StoreCore
from ._fanout import per_shard

__all__ = ["Progress", "ProgressReport"]

_CHUNK = 1_000
"""Reports per script call: a bounded step, as renewals are."""


class Progress:
    def __init__(self, core: StoreCore) -> None:
        self._core = core

    async def report(self, reports: Sequence[ProgressReport]) -> list[bool]:
        core = self._core
        if core.shards == 1:
            return await self._report_shard(0, reports)
        return await per_shard(
            reports, lambda report: core.shard_of_id(report.job_id), self._report_shard, False
        )

    async def _report_shard(self, shard: int, reports: Sequence[ProgressReport]) -> list[bool]:
        core = self._core
        applied: list[bool] = []
        keys = core.keys[shard]["progress"]
        for start in range(0, len(reports), _CHUNK):
            args: list[Arg] = [core.namespaces[shard]]
            for report in reports[start : start + _CHUNK]:
                # repr keeps every digit of the float; Redis stores the text as given.
                args += [report.job_id, report.token, repr(report.fraction), report.message]
            reply = await core.read(core.call("progress", args, keys))
            applied += [int(code) == 1 for code in reply]
        return applied

"""Workers' calls: claim (fanned out over shards, fair across types), settle, renew, the sweep.

Every lease is stamped by the master that holds its job (Redis decides
time), and every call about leases goes to the shard its job id names.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Sequence
from typing import Any

from jobqueue.domain import (
    DEFAULT_MAX_ATTEMPTS,
    MAX_UNCONFIRMED_DELIVERIES,
    Lease,
    LeaseState,
    Outcome,
    OutcomeKind,
    validate_type,
)
from redis import exceptions as rexc

from ._codec import job_from_hash, pairs_to_dict
from ._core import Arg, StoreCore
from ._errors import translated
from ._fanout import gather_all, per_shard
from ._waits import NOT_RUN, WakeWaits

_log = logging.getLogger(__name__)

_DRAIN_GRACE_S = 2.0
"""How long closing waits for the replies of waits it ended (as a wait's own grace)."""

MAX_CLAIM = 1_000
"""Most jobs one claim takes: bounds the time one script holds Redis."""
_CHUNK = 1_000
_KINDS = {
    OutcomeKind.COMPLETE: "c",
    OutcomeKind.RETRY: "r",
    OutcomeKind.FAIL: "f",
    OutcomeKind.RELEASE: "l",
    OutcomeKind.CANCELLED: "x",
}
_LEASE_STATES = {0: LeaseState.LOST, 1: LeaseState.ACTIVE, 2: LeaseState.CANCEL_REQUESTED}


class Leasing:
    """Claims, settles, renewals and the lease sweep of one store."""

    def __init__(self, core: StoreCore) -> None:
        self._core = core
        # Idle claims share one BLPOP per set of wake lists, and at most as
        # many as the blocking pool holds, so they never exhaust it (_waits.py).
        self.waits = WakeWaits(
            core.connections.blocking, core.hot.execute, slots=core.settings.max_connections
        )
        self._hand_backs: set[asyncio.Task[None]] = set()
        self._rotation = 0
        self._sweeper_id = secrets.token_hex(8)

    async def claim(
        self, types: Sequence[str], *, limit: int, lease_ms: int, wait_ms: int = 0
    ) -> list[Lease]:
        core = self._core
        order = [validate_type(t) for t in dict.fromkeys(types)]
        limit = min(limit, MAX_CLAIM)
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + max(wait_ms, 0) / 1000
        if not order or limit <= 0:
            await asyncio.sleep(max(wait_ms, 0) / 1000)
            return []
        groups: dict[int, list[str]] = {}
        for job_type in order:
            groups.setdefault(core.shard_of_type(job_type), []).append(job_type)
        wake_keys = [
            [core.namespaces[shard] + "w:" + t for t in group] for shard, group in groups.items()
        ]
        claimed: tuple[list[Lease], float | None] | None = None
        while True:
            if claimed is not None:
                leases, wait_s = claimed
            elif len(groups) == 1:
                shard, group = next(iter(groups.items()))
                leases, wait_s = await self._claim_shard(shard, group, limit, lease_ms)
            else:
                leases, wait_s = await self._claim_shards(groups, limit, lease_ms)
            remaining = give_up_at - loop.time()
            if leases or remaining <= 0:
                return leases
            if wait_s is not None:
                remaining = min(remaining, wait_s)
            if len(groups) == 1:
                # The next claim rides behind the wait (_waits.py: wait_then).
                shard, group = next(iter(groups.items()))
                claimed = await self._wait_then_claim(shard, group, limit, lease_ms, remaining)
            else:
                await self._wait_for_wake(wake_keys, remaining)

    def _claim_args(self, shard: int, order: list[str], limit: int, lease_ms: int) -> list[Arg]:
        """claim.lua's arguments, its types rotated so that each claim starts at another."""
        self._rotation = (self._rotation + 1) % len(order)
        rotated = order[self._rotation :] + order[: self._rotation]
        token_base = secrets.token_hex(6) + ":"
        return [self._core.namespaces[shard], limit, lease_ms, token_base, *rotated]

    async def _claim_shard(
        self, shard: int, order: list[str], limit: int, lease_ms: int
    ) -> tuple[list[Lease], float | None]:
        """One claim script on one shard; with no lease, how long until its next due job."""
        core = self._core
        args = self._claim_args(shard, order, limit, lease_ms)
        with translated():
            reply = await core.script("claim", args, keys=core.keys[shard]["claim"])
        return self._claimed(reply, lease_ms)

    async def _wait_then_claim(
        self, shard: int, order: list[str], limit: int, lease_ms: int, timeout_s: float
    ) -> tuple[list[Lease], float | None] | None:
        """Wait for a wake of the shard's types, the claim written behind the wait.

        Redis runs the claim as soon as the wait ends, token or timeout, with
        no round trip between (start latency: docs/benchmarks.md). None when
        the claim did not run there (a group wait, or NOSCRIPT after a Redis
        restart): the caller's next claim is an ordinary one.
        """
        core = self._core
        keys = core.keys[shard]["claim"]
        command = core.script_command(
            "claim", self._claim_args(shard, order, limit, lease_ms), keys
        )
        wake_keys = [core.namespaces[shard] + "w:" + t for t in order]

        def orphaned(reply: Any) -> None:
            if isinstance(reply, list):
                self._hand_back(self._claimed(reply, lease_ms)[0])

        with translated():
            reply = await self.waits.wait_then(wake_keys, max(timeout_s, 0.001), command, orphaned)
            if reply is NOT_RUN or isinstance(reply, rexc.NoScriptError):
                return None
            if isinstance(reply, rexc.RedisError):
                raise reply
        return self._claimed(reply, lease_ms)

    def _hand_back(self, leases: list[Lease]) -> None:
        """RELEASE leases a cancelled claim took behind its wait: due again, attempt given back.

        (Were the release to fail, the leases are unconfirmed: they expire
        without charging an attempt, as a claim reply lost on the way does.)
        """
        if not leases:
            return
        outcomes = [
            Outcome(job_id=lease.job.id, token=lease.token, kind=OutcomeKind.RELEASE)
            for lease in leases
        ]
        task = asyncio.get_running_loop().create_task(self._release_quietly(outcomes))
        self._hand_backs.add(task)
        task.add_done_callback(self._hand_backs.discard)

    async def _release_quietly(self, outcomes: list[Outcome]) -> None:
        try:
            with translated():
                await self.settle(outcomes)
        except Exception as error:
            _log.warning(
                "could not hand back %d lease(s) of a cancelled claim: %s", len(outcomes), error
            )

    async def close(self) -> None:
        """End the waits with a claim behind them, stop the shared ones, then finish the
        hand-backs: all before the store's connections close, so what a cancelled claim
        took goes back to the queue rather than waiting for its lease to expire."""
        drain = getattr(self._core.connections.blocking, "drain", None)
        if drain is not None:
            await drain(_DRAIN_GRACE_S)
        await self.waits.close()
        await asyncio.gather(*self._hand_backs, return_exceptions=True)

    @staticmethod
    def _claimed(reply: list[Any], lease_ms: int) -> tuple[list[Lease], float | None]:
        """The leases of a claim's reply and, with none, how long until its next due job."""
        now = int(reply[1])  # Redis's time: deadlines and due times count from it
        leases = [
            Lease(
                job_from_hash(reply[i].decode(), pairs_to_dict(reply[i + 2])),
                reply[i + 1].decode(),
                now + lease_ms,
            )
            for i in range(2, len(reply), 3)
        ]
        next_due = int(reply[0])
        return leases, (max(next_due - now, 0) / 1000 if next_due >= 0 else None)

    async def _claim_shards(
        self, groups: dict[int, list[str]], limit: int, lease_ms: int
    ) -> tuple[list[Lease], float | None]:
        """Claim across shards with the fairness claim.lua keeps across types.

        Each round gives the shards that may hold due work a share of what is
        left in proportion to their types (a shard that filled its share may
        have more), starting from a rotating shard, and the shards of a round
        run at once. A claim smaller than the number of shards asks at most
        ``limit`` of them per round: an idle claim of one job over 30 empty
        shards costs 30 small scripts. Each master stamps its own leases, so a
        deadline counts from the clock of the master that holds the job.
        """
        active = list(groups)
        self._rotation = (self._rotation + 1) % len(active)
        active = active[self._rotation :] + active[: self._rotation]
        leases: list[Lease] = []
        waits: list[float] = []
        while active and len(leases) < limit:
            # Shares in proportion to each shard's types: an equal share per type.
            left = limit - len(leases)
            weights = [len(groups[shard]) for shard in active]
            wants = [left * weight // sum(weights) for weight in weights]
            for index in range(left - sum(wants)):  # the remainder, in the rotated order
                wants[index % len(wants)] += 1
            replies = await gather_all(
                self._claim_shard(shard, groups[shard], want, lease_ms)
                for shard, want in zip(active, wants, strict=True)
                if want > 0
            )
            asked = [(shard, want) for shard, want in zip(active, wants, strict=True) if want]
            # A shard that filled its share may hold more; one that got no share
            # this round has not been asked yet. Each round ends at least one of
            # the others, or fills the claim, so the rounds are few.
            still = [shard for shard, want in zip(active, wants, strict=True) if not want]
            for (shard, want), (got, wait_s) in zip(asked, replies, strict=True):
                leases += got
                if wait_s is not None:
                    waits.append(wait_s)
                if len(got) == want:
                    still.append(shard)
            active = still
        return leases, (min(waits) if waits else None)

    async def _wait_for_wake(self, wake_keys: list[list[str]], timeout_s: float) -> None:
        """Until a wake token is ours or ``timeout_s`` passed (see _waits.py).

        ``wake_keys`` holds one list per shard: one BLPOP cannot span slots, so
        a claimer of several shards waits on each and wakes at the first token
        (a token handed to a wait it then cancels is passed on, see _waits.py).
        """
        timeout_s = max(timeout_s, 0.001)
        with translated():
            if len(wake_keys) == 1:
                await self.waits.wait(wake_keys[0], timeout_s)
                return
            waits = [asyncio.ensure_future(self.waits.wait(keys, timeout_s)) for keys in wake_keys]
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for wait in waits:
                    wait.cancel()
                outcomes = await asyncio.gather(*waits, return_exceptions=True)
            for outcome in outcomes:
                if isinstance(outcome, Exception):
                    raise outcome

    async def settle(self, outcomes: Sequence[Outcome]) -> list[bool]:
        core = self._core
        if core.shards == 1:
            return await self._settle_shard(0, outcomes)
        return await per_shard(
            outcomes, lambda outcome: core.shard_of_id(outcome.job_id), self._settle_shard, False
        )

    async def _settle_shard(self, shard: int, outcomes: Sequence[Outcome]) -> list[bool]:
        core = self._core
        results: list[bool] = []
        for start in range(0, len(outcomes), _CHUNK):
            chunk = outcomes[start : start + _CHUNK]
            # Plain completions travel packed in one argument (see settle.lua):
            # redis-py encodes each argument in Python, seven per outcome otherwise.
            plain: list[int] = []
            packed: list[str] = []
            args: list[Arg] = [core.namespaces[shard], ""]
            for index, outcome in enumerate(chunk):
                if (
                    outcome.kind is OutcomeKind.COMPLETE
                    and outcome.result is None
                    and not outcome.error
                    and "\0" not in outcome.job_id
                    and "\0" not in outcome.token
                ):
                    plain.append(index)
                    packed += (outcome.job_id, outcome.token)
                    continue
                args += [
                    outcome.job_id,
                    outcome.token,
                    _KINDS[outcome.kind],
                    "0" if outcome.result is None else "1",
                    outcome.result or b"",
                    outcome.error or "",
                    "" if outcome.retry_delay_ms is None else outcome.retry_delay_ms,
                ]
            args[1] = "\0".join(packed)
            with translated():
                applied = await core.script("settle", args, keys=core.keys[shard]["settle"])
            flags = [flag == 1 for flag in applied]
            if len(plain) == len(chunk) or not plain:
                results += flags
                continue
            # The packed verdicts come first in the reply: put them back in order.
            ordered: list[bool] = [False] * len(chunk)
            rest = iter(flags[len(plain) :])
            is_plain = set(plain)
            for position, flag in zip(plain, flags, strict=False):
                ordered[position] = flag
            for index in range(len(chunk)):
                if index not in is_plain:
                    ordered[index] = next(rest)
            results += ordered
        return results

    async def renew(self, leases: Sequence[tuple[str, str]], *, lease_ms: int) -> list[LeaseState]:
        core = self._core

        async def renew_shard(shard: int, part: Sequence[tuple[str, str]]) -> list[LeaseState]:
            return await self._renew_shard(shard, part, lease_ms)

        if core.shards == 1:
            return await renew_shard(0, leases)
        return await per_shard(
            leases, lambda lease: core.shard_of_id(lease[0]), renew_shard, LeaseState.LOST
        )

    async def _renew_shard(
        self, shard: int, leases: Sequence[tuple[str, str]], lease_ms: int
    ) -> list[LeaseState]:
        core = self._core
        states: list[LeaseState] = []
        keys = core.keys[shard]["renew"]
        for start in range(0, len(leases), _CHUNK):
            args: list[Arg] = [core.namespaces[shard], lease_ms]
            for job_id, token in leases[start : start + _CHUNK]:
                args += [job_id, token]
            reply = await core.read(core.call("renew", args, keys))
            states += [_LEASE_STATES[int(code)] for code in reply]
        return states

    async def requeue_expired(self, *, limit: int = 1_000, lock_ms: int = 0) -> int:
        """The sweep, shard by shard: each shard has its own lock and ``limit``."""
        swept = await gather_all(
            self._requeue_shard(shard, limit, lock_ms) for shard in range(self._core.shards)
        )
        return sum(swept)

    async def _requeue_shard(self, shard: int, limit: int, lock_ms: int) -> int:
        core = self._core
        args: list[Arg] = [
            core.namespaces[shard],
            limit,
            DEFAULT_MAX_ATTEMPTS,
            MAX_UNCONFIRMED_DELIVERIES,
            max(lock_ms, 0),
            self._sweeper_id,
        ]
        with translated():
            expired, _forgotten = await core.script(
                "requeue", args, keys=core.keys[shard]["requeue"]
            )
        return max(int(expired), 0)

"""What a running worker holds: its jobs in flight and the outcomes waiting to be stored.

The runner, the claim and settle loops and the lease keeper all read and change
this one object; keeping it in one place (rather than as attributes spread
over the worker) makes who may touch what visible.
"""

from __future__ import annotations

import asyncio

from jobqueue.domain import Outcome

from ._context import JobContext


class InFlight:
    """A worker's jobs in flight and its outbox.

    Attributes:
        jobs: claimed and not yet settled, keyed by lease token, not job id: a
            job re-delivered to us after a lost lease must not overwrite the
            abandoned attempt's entry.
        stuck: job id -> the task of a thread run whose lease was lost but
            whose thread has not returned; a new run of that job waits for it.
        outbox: outcomes waiting for the next settle call.
        unsettled: outcomes queued or being sent, some with no ``jobs`` entry.
        settled: outcomes the store accepted or refused so far (for the stop line).
        reserved: slots promised to a claim that is out (the settle lanes'
            claims ride beside the claim loop's): no other claim may take them.
        freeing: slots that the settles out will free (their jobs' entries
            leave ``jobs`` when they answer), which their claims may fill.
    """

    def __init__(self) -> None:
        self.jobs: dict[str, JobContext] = {}
        self.stuck: dict[str, asyncio.Task[None]] = {}
        self.outbox: list[Outcome] = []
        self.unsettled = 0
        self.settled = 0
        self.reserved = 0
        self.freeing = 0
        # asyncio primitives bind to the running loop on first use, not here.
        self.slots_freed = asyncio.Event()
        self.outbox_ready = asyncio.Event()

    def queue(self, outcome: Outcome) -> None:
        self.outbox.append(outcome)
        self.unsettled += 1
        self.outbox_ready.set()

    def slot_freed(self) -> None:
        self.slots_freed.set()

    def without_lost(self, batch: list[Outcome]) -> list[Outcome]:
        """``batch`` less the outcomes of leases given up (the store would refuse them)."""
        kept = []
        for outcome in batch:
            ctx = self.jobs.get(outcome.token)
            if ctx is not None and ctx._lost:
                self.jobs.pop(outcome.token, None)
                self.unsettled -= 1
                self.slot_freed()
            else:
                kept.append(outcome)
        return kept

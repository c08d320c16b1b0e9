"""The plain model the store machines check every store against.

It is the JobStore contract in its plainest form, so a disagreement points at the store:
a dict of jobs, linear scans, and time kept as bounds where the store picks it
(``due``/``due_hi``, ``finished_at``/``finished_hi``) until a check reads it back.
The machine that drives it is _store_machine.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from jobqueue.domain import JobStatus


@dataclass
class ModelJob:
    id: str
    type: str
    due: int  # lowest possible due time; equal to due_hi once the store was read
    due_hi: int
    max_attempts: int | None
    status: JobStatus = JobStatus.PENDING
    attempts: int = 0
    cancel_requested: bool = False
    token: str = ""
    deadline: int = 0
    confirmed: bool = False
    unconfirmed_expiries: int = 0
    finished_at: int = 0  # lowest possible finish time
    finished_hi: int = 0
    old_tokens: list[str] = field(default_factory=list)
    priority: int = 0

    def claim_order(self) -> tuple[int, int, str]:
        """Where it stands among a type's due jobs: highest priority, then earliest due, then id."""
        return (-self.priority, self.due, self.id)


class Model:
    """The store's contract in its plainest form: a dict and linear scans."""

    def __init__(self, retention_ms: int) -> None:
        self.jobs: dict[str, ModelJob] = {}
        self.rotation = 0
        self.retention_ms = retention_ms

    def visible(self, now: int) -> dict[str, ModelJob]:
        return {
            job_id: job
            for job_id, job in self.jobs.items()
            if not (job.status.is_terminal and job.finished_at + self.retention_ms <= now)
        }

    def claim(self, types: list[str], limit: int, now: int) -> list[ModelJob]:
        order = list(dict.fromkeys(types))
        self.rotation = (self.rotation + 1) % len(order)
        active = order[self.rotation :] + order[: self.rotation]
        pending = [j for j in self.jobs.values() if j.status is JobStatus.PENDING]
        assert all(j.due == j.due_hi for j in pending), "every due time is read back first"
        queues = {
            t: sorted((j for j in pending if j.type == t), key=ModelJob.claim_order) for t in order
        }
        taken: list[ModelJob] = []
        while len(taken) < limit and active:
            still = []
            share = -(-(limit - len(taken)) // len(active))
            for t in active:
                want = min(share, limit - len(taken))
                if want <= 0:
                    break
                due = [j for j in queues[t] if j.due <= now and j not in taken][:want]
                taken += due
                if len(due) == want:
                    still.append(t)
            active = still
        return taken

    def claim_any_fair(
        self, types: list[str], limit: int, now: int, ids: list[str]
    ) -> list[ModelJob]:
        """Check a claim whose order across types is the store's own (one spanning shards).

        What still holds: as many leases as the limit or the due jobs allow,
        each a distinct due job of a claimed type, and each type's leases the
        head of its queue (highest priority first, then earliest due, then id).
        """
        order = list(dict.fromkeys(types))
        pending = [j for j in self.jobs.values() if j.status is JobStatus.PENDING]
        assert all(j.due == j.due_hi for j in pending), "every due time is read back first"
        queues = {
            t: sorted(
                (j for j in pending if j.type == t and j.due <= now), key=ModelJob.claim_order
            )
            for t in order
        }
        assert len(ids) == len(set(ids)) == min(limit, sum(len(q) for q in queues.values()))
        taken = [self.jobs[job_id] for job_id in ids]
        for t in order:
            mine = sorted((j for j in taken if j.type == t), key=ModelJob.claim_order)
            assert mine == queues[t][: len(mine)], t
        return taken

    def finish(self, job: ModelJob, status: JobStatus, now: int, now_hi: int) -> None:
        job.status, job.finished_at, job.finished_hi, job.token = status, now, now_hi, ""

    def requeue(self, job: ModelJob, due: int, due_hi: int) -> None:
        job.status, job.due, job.due_hi, job.token = JobStatus.PENDING, due, due_hi, ""

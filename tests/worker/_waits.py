"""Waiting for a job to finish, for the worker tests that drive a store directly."""

from __future__ import annotations

import asyncio

from jobqueue.domain import Job, JobStatus, JobStore


async def finished(store: JobStore, job_id: str, within_s: float = 15.0) -> Job:
    """The job once COMPLETED or FAILED; fails the test after ``within_s`` (no store event)."""
    async with asyncio.timeout(within_s):
        while True:
            job = await store.get(job_id)
            if job is not None and job.status in (JobStatus.COMPLETED, JobStatus.FAILED):
                return job
            await asyncio.sleep(0.01)

"""Progress: what a running handler says about how far it got, stored on its job.

A report is fenced like a settle: it applies only while the lease it names
is held, so a worker that lost its lease (the job now runs elsewhere) cannot
overwrite the new run's progress. It is a watch event, and it survives the
job's end (the last value a handler reported stays readable).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ._errors import InvalidJob
from ._validation import Limits, validate_job_id

MAX_PROGRESS_MESSAGE_LENGTH = 256


@dataclass(frozen=True, slots=True, kw_only=True)
class ProgressReport:
    """One job's progress: a fraction 0..1 and a short message, under its lease."""

    job_id: str
    token: str
    fraction: float
    message: str = ""


@runtime_checkable
class ProgressStore(Protocol):
    """A store that keeps progress on jobs: both of jobqueue's stores do."""

    async def report_progress(self, reports: Sequence[ProgressReport]) -> list[bool]:
        """Store each report on its job while its lease is held (current token,
        deadline not passed by the store's clock); False, and no change, elsewhere.
        """
        ...


def validate_progress(reports: Sequence[ProgressReport], limits: Limits) -> None:
    """Refuse the whole batch, naming ``reports[i]``, for any malformed report."""
    if len(reports) > limits.max_batch_size:
        raise InvalidJob("reports", f"a batch holds at most {limits.max_batch_size} reports")
    for index, report in enumerate(reports):
        field = f"reports[{index}]"
        try:
            validate_job_id(report.job_id)
        except InvalidJob as error:
            raise InvalidJob(f"{field}.job_id", error.message) from None
        if not report.token:
            raise InvalidJob(f"{field}.token", "must not be empty")
        if not (math.isfinite(report.fraction) and 0.0 <= report.fraction <= 1.0):
            raise InvalidJob(f"{field}.fraction", "must be a number from 0 to 1")
        if len(report.message) > MAX_PROGRESS_MESSAGE_LENGTH:
            raise InvalidJob(
                f"{field}.message", f"must be at most {MAX_PROGRESS_MESSAGE_LENGTH} characters"
            )


class ProgressService:
    """The one use case both worker paths call (StoreSource, WorkerService.ReportProgress)."""

    def __init__(self, store: ProgressStore, *, limits: Limits | None = None) -> None:
        self._store = store
        self._limits = limits or Limits()

    async def report(self, reports: Sequence[ProgressReport]) -> list[bool]:
        validate_progress(reports, self._limits)
        if not reports:
            return []
        return await self._store.report_progress(reports)

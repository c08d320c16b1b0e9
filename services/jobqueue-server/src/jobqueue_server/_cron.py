"""The CronParser port on cronsim, a maintained cron library (used by Healthchecks).

cronsim parses the five standard fields (plus ``L``, ``#`` and ``W``) and
steps over naive datetimes, which is exactly what the domain asks of it: the
domain maps wall times to instants in the schedule's time zone and applies
its own DST rules (jobqueue/domain/_schedules.py), so they are ours,
documented and tested, not a library's quirk.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from cronsim import CronSim, CronSimError


@dataclass(frozen=True, slots=True)
class CronsimRule:
    expression: str

    def walltimes_after(self, start: datetime) -> Iterator[datetime]:
        # cronsim yields matches strictly after ``start``, and stops (StopIteration)
        # when none exists within 50 years: the schedule then has no next tick.
        return iter(CronSim(self.expression, start))


class CronsimParser:
    """Parses with cronsim; raises ValueError (cronsim's message) for an invalid expression."""

    def parse(self, expression: str) -> CronsimRule:
        try:
            CronSim(expression, datetime(2000, 1, 1))
        except CronSimError as error:
            raise ValueError(str(error)) from None
        return CronsimRule(expression)

"""Properties of cron ticks around DST changes, checked by hypothesis.

Servers plan from whatever tick was handled last, so the ticks after any tick
must be exactly the rest of the sequence: otherwise two servers, or one
server before and after a restart, would disagree about what comes next.
Ticks must strictly increase (each instant fires once), and each must be a
wall time the expression matches, read with the offset before a change.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from jobqueue.domain import JobTemplate, Schedule, ticks_after
from jobqueue_server._cron import CronsimParser

CRON = CronsimParser()
ZONES = ["America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"]
EXPRESSIONS = [
    "*/15 * * * *",
    "30 1 * * *",
    "0 2 * * *",
    "45 2 * * 0",
    "*/7 1-3 * * *",
    "0 * * * *",
]
# 2026's changes in those zones, as UTC instants; starts are drawn around them.
CHANGES = [
    datetime(2026, 3, 8, 7, tzinfo=UTC),  # New York, spring
    datetime(2026, 11, 1, 6, tzinfo=UTC),  # New York, autumn
    datetime(2026, 3, 29, 1, tzinfo=UTC),  # London, spring
    datetime(2026, 10, 25, 1, tzinfo=UTC),  # London, autumn
    datetime(2026, 4, 4, 15, tzinfo=UTC),  # Lord Howe, half an hour back
    datetime(2026, 10, 3, 15, 30, tzinfo=UTC),  # Lord Howe, half an hour on
]
COUNT = 30


def schedule(expression: str, zone: str) -> Schedule:
    return Schedule(
        id="s", name="s", template=JobTemplate(type="t"), cron=expression, time_zone=zone
    )


@settings(max_examples=60, deadline=None)
@given(
    expression=st.sampled_from(EXPRESSIONS),
    zone=st.sampled_from(ZONES),
    change=st.sampled_from(CHANGES),
    offset_min=st.integers(min_value=-26 * 60, max_value=26 * 60),
)
def test_ticks_increase_match_the_expression_and_resume_identically_from_any_tick(
    expression: str, zone: str, change: datetime, offset_min: int
) -> None:
    s = schedule(expression, zone)
    start = int((change + timedelta(minutes=offset_min)).timestamp() * 1000)
    ticks = list(itertools.islice(ticks_after(s, start, CRON), COUNT))
    assert len(ticks) == COUNT
    assert ticks[0] > start
    assert all(a < b for a, b in itertools.pairwise(ticks))
    for i, tick in enumerate(ticks[:-1]):
        rest = list(itertools.islice(ticks_after(s, tick, CRON), COUNT - i - 1))
        assert rest == ticks[i + 1 :]
    tz = ZoneInfo(zone)
    for tick in ticks:
        local = datetime.fromtimestamp(tick / 1000, tz).replace(tzinfo=None)
        # Either the wall time matches, or it is a gap time shifted forward:
        # some matching wall time read with fold=0 names this instant.
        candidates = [local - timedelta(minutes=m) for m in (0, 30, 60)]
        assert any(
            int(c.replace(tzinfo=tz, fold=0).timestamp() * 1000) == tick and _matches(expression, c)
            for c in candidates
        ), (expression, zone, datetime.fromtimestamp(tick / 1000, UTC))


def _matches(expression: str, wall: datetime) -> bool:
    before = wall - timedelta(minutes=1)
    return next(CRON.parse(expression).walltimes_after(before)) == wall

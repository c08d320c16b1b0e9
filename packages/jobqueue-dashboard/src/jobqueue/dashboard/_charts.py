"""Charts as server-rendered SVG geometry: no chart library, nothing for CSP to block.

A chart is computed here (pure numbers) and drawn by a template with class
names only, so colours live in the static stylesheet.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from ._history import Sample

WIDTH = 600
HEIGHT = 160
_PAD = 4


@dataclass(frozen=True, slots=True)
class Series:
    """One line: its name (also its CSS class), SVG points and latest value."""

    name: str
    points: str
    latest: int


@dataclass(frozen=True, slots=True)
class Chart:
    title: str
    series: list[Series]
    peak: int
    span_s: int
    width: int = WIDTH
    height: int = HEIGHT

    @property
    def empty(self) -> bool:
        return not self.series or all(not s.points for s in self.series)


def _points(values: Sequence[int], peak: int) -> str:
    if len(values) < 2:
        return ""
    step = (WIDTH - 2 * _PAD) / (len(values) - 1)
    usable = HEIGHT - 2 * _PAD
    return " ".join(
        f"{_PAD + i * step:.1f},{HEIGHT - _PAD - (v / peak) * usable:.1f}"
        for i, v in enumerate(values)
    )


def line_chart(title: str, samples: Sequence[Sample], states: Sequence[str]) -> Chart:
    """Counts of ``states`` over the samples, on one scale."""
    columns = {state: [s.count(state) for s in samples] for state in states}
    return _chart(title, samples, columns)


def rate_chart(title: str, samples: Sequence[Sample], states: Sequence[str]) -> Chart:
    """Per-minute growth of terminal counts between samples: throughput and failures.

    The counts cover the retention window, so they can shrink when old jobs
    are forgotten; a shrink is drawn as zero, not as negative throughput.
    """
    columns: dict[str, list[int]] = {}
    for state in states:
        rates = []
        for before, after in itertools.pairwise(samples):
            elapsed_ms = max(after.at_ms - before.at_ms, 1)
            grown = max(after.count(state) - before.count(state), 0)
            rates.append(round(grown * 60_000 / elapsed_ms))
        columns[state] = rates
    return _chart(title, samples[1:], columns)


def _chart(title: str, samples: Sequence[Sample], columns: dict[str, list[int]]) -> Chart:
    peak = max((max(values, default=0) for values in columns.values()), default=0)
    scale = max(peak, 1)
    span_s = (samples[-1].at_ms - samples[0].at_ms) // 1000 if len(samples) > 1 else 0
    series = [
        Series(name, _points(values, scale), values[-1] if values else 0)
        for name, values in columns.items()
    ]
    return Chart(title=title, series=series, peak=peak, span_s=span_s)

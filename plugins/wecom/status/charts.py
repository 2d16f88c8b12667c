"""Chart geometry for the status page: where each point, bar, tick and label goes, as plain numbers.

The template draws the SVG from these values (so every label passes
Jinja's autoescaping); this module only does the arithmetic, which the
tests can check without parsing markup. Time runs left to right in UTC
with dated ticks; failed runs are marked where they happened instead of
being drawn as zeros.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from wecom.runs import RunStatus

WIDTH, HEIGHT = 400, 190
LEFT, RIGHT, TOP, BOTTOM = 52, 392, 10, 158  # the plot area inside the frame
INSET = 8  # keeps the first and last run off the axes
_EPOCH = datetime(1970, 1, 5, tzinfo=UTC)  # a Monday: weekly ticks fall on Mondays
_DAY = timedelta(days=1)
_TIME_STEPS = [timedelta(hours=h) for h in (1, 3, 6, 12)] + [timedelta(days=d) for d in (1, 2, 7, 14, 28, 91)]
_DURATION_UNITS = ((7200, 3600, "hours"), (120, 60, "minutes"), (0, 1, "seconds"))

# A run status's tone: the colour of its bar, badge and legend entry.
TONES: dict[str, str] = {
    RunStatus.SUCCESS: "ok",
    RunStatus.UNCHANGED: "ok",
    RunStatus.PARTIAL: "warn",
    RunStatus.FAILED: "bad",
    RunStatus.GUARD_TRIPPED: "bad",
    RunStatus.STALE: "muted",
    RunStatus.SKIPPED: "muted",
    RunStatus.DRY_RUN: "muted",
}
_TONE_LEGEND = {
    "ok": "loaded (success, unchanged)",
    "warn": "partial: nothing deleted",
    "bad": "failed or stopped by the guard",
    "muted": "skipped, dry run or stale",
}


@dataclass(frozen=True)
class Tick:
    at: float
    label: str


@dataclass(frozen=True)
class Mark:
    """One drawn run: a dot (``x``, ``y``), a bar (down from ``y``, ``width`` wide) or a failure line at ``x``."""

    x: float
    y: float
    tip: str
    tone: str = ""
    width: float = 0.0


@dataclass(frozen=True)
class Chart:
    title: str
    y_label: str
    x_ticks: list[Tick] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    line: str = ""  # polyline points of a line chart
    dots: list[Mark] = field(default_factory=list)
    bars: list[Mark] = field(default_factory=list)
    failures: list[Mark] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)  # (tone or "line"/"failure", text)

    @property
    def empty(self) -> bool:
        return not (self.dots or self.bars or self.failures)


def _scale(value: float, low: float, high: float, out_low: float, out_high: float) -> float:
    if high == low:
        return (out_low + out_high) / 2
    return out_low + (value - low) * (out_high - out_low) / (high - low)


def _when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def time_ticks(first: datetime, last: datetime, most: int = 6) -> list[tuple[datetime, str]]:
    """Round dates (or hours, dated at midnight, for a short span) between ``first`` and ``last``."""
    if first == last:
        return [(first, f"{first:%b %d}")]
    step = next((s for s in _TIME_STEPS if (last - first) / s <= most), _TIME_STEPS[-1])
    moment = _EPOCH + math.ceil((first - _EPOCH) / step) * step
    ticks = []
    while moment <= last:
        ticks.append((moment, f"{moment:%H:%M}" if moment.hour or moment.minute else f"{moment:%b %d}"))
        moment += step
    return ticks


def value_ticks(high: float, most: int = 4) -> list[float]:
    """0 up to a round number at or above ``high``, in 1-2-5 steps."""
    if high <= 0:
        return [0.0, 1.0]
    raw = high / most
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    return [i * step for i in range(math.ceil(high / step - 1e-9) + 1)]


@dataclass(frozen=True)
class TimeAxis:
    """The x axis a company's charts share, so one moment sits at the same place in each of them."""

    low: float
    high: float
    ticks: list[Tick]

    @classmethod
    def spanning(cls, times: Sequence[datetime]) -> TimeAxis:
        """From the first to the last moment; half a day either side of a single one."""
        first, last = min(times), max(times)
        if first == last:
            first, last = first - _DAY / 2, last + _DAY / 2
        low, high = first.timestamp(), last.timestamp()
        ticks = [
            Tick(_scale(t.timestamp(), low, high, LEFT + INSET, RIGHT - INSET), label)
            for t, label in time_ticks(first, last)
        ]
        return cls(low, high, ticks)

    def x(self, moment: datetime) -> float:
        return _scale(moment.timestamp(), self.low, self.high, LEFT + INSET, RIGHT - INSET)


def _y_ticks(values: Sequence[float], label: str = "{:,.0f}") -> tuple[float, list[Tick]]:
    ticks = value_ticks(max(values, default=0.0))
    top = ticks[-1]
    return top, [Tick(_scale(v, 0, top, BOTTOM, TOP), label.format(v)) for v in ticks]


def line_chart(
    title: str,
    unit: str,
    points: Sequence[tuple[datetime, float]],
    failures: Sequence[tuple[datetime, str]] = (),
    axis: TimeAxis | None = None,
) -> Chart:
    """A count per snapshot over time, with a red line where a run failed (and why, on hover)."""
    times = [t for t, _ in points] + [t for t, _ in failures]
    if not times:
        return Chart(title, unit)
    axis = axis or TimeAxis.spanning(times)
    top, y_ticks = _y_ticks([v for _, v in points])
    dots = [Mark(axis.x(t), _scale(v, 0, top, BOTTOM, TOP), f"{_when(t)}: {v:,.0f} {unit}") for t, v in points]
    marks = [Mark(axis.x(t), TOP, f"{_when(t)}: failed: {why}", "bad") for t, why in failures]
    legend = ([("line", f"{unit} in each loaded snapshot")] if points else []) + (
        [("failure", "failed run (hover for the error)")] if failures else []
    )
    line = " ".join(f"{d.x:.1f},{d.y:.1f}" for d in dots)
    return Chart(title, unit, axis.ticks, y_ticks, line=line, dots=dots, failures=marks, legend=legend)


def duration_unit(longest: float) -> tuple[int, str]:
    """Seconds per unit and its name for an axis whose longest value is ``longest`` seconds."""
    return next((per, name) for above, per, name in _DURATION_UNITS if longest >= above)


def bar_chart(title: str, bars: Sequence[tuple[datetime, float, str, str]], axis: TimeAxis | None = None) -> Chart:
    """One bar per run (``(start, seconds, status, tip)``) at its time, coloured by its status's tone."""
    if not bars:
        return Chart(title, "duration")
    axis = axis or TimeAxis.spanning([t for t, _, _, _ in bars])
    per, unit = duration_unit(max(seconds for _, seconds, _, _ in bars))
    top, y_ticks = _y_ticks([seconds / per for _, seconds, _, _ in bars], "{:g}")
    width = max(2.0, min(12.0, (RIGHT - LEFT - 2 * INSET) / len(bars) - 2))
    marks = [
        Mark(
            axis.x(t) - width / 2,
            _scale(seconds / per, 0, top, BOTTOM, TOP),
            f"{_when(t)}: {tip}",
            TONES.get(status, "muted"),
            width,
        )
        for t, seconds, status, tip in bars
    ]
    tones = [tone for tone in _TONE_LEGEND if any(m.tone == tone for m in marks)]
    return Chart(title, unit, axis.ticks, y_ticks, bars=marks, legend=[(t, _TONE_LEGEND[t]) for t in tones])

"""The "Your data" chart: 30 days of steps (bars) and resting heart rate (a line), as inline SVG.

Rendered on the server, no JavaScript, so it works on any phone and with scripts off. The SVG
is one accessible image: ``role="img"`` named by its ``<title>`` and described by its
``<desc>`` (days with data, mean steps, mean resting heart rate), since screen readers do
not read the bars. It scales by ``viewBox`` with ``width="100%"``; the drawing is sized for a
360 px phone, so its text stays legible there. Every colour used for text has a contrast of
at least 4.5:1 on white. The output is a pure function of its input (the same data gives the
same string), so tests and caches can compare it.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # my_data imports this module; the types only are needed here
    from portal.my_data import DayPoint, MyData

__all__ = ["HR_COLOUR", "STEPS_COLOUR", "TEXT_COLOUR", "ChartLabels", "chart_svg"]

# Contrast on white: #1f5f99 6.7:1, #a4262c 7.3:1, #1a1a1a 17.4:1 (WCAG 1.4.3 asks 4.5:1 for text).
STEPS_COLOUR = "#1f5f99"
HR_COLOUR = "#a4262c"
TEXT_COLOUR = "#1a1a1a"
_GRID_COLOUR = "#d0d0d0"  # decoration only, never text

_WIDTH, _HEIGHT = 360, 240
_LEFT, _RIGHT, _TOP, _BOTTOM = 44, 324, 30, 204  # the plot area inside the margins for the axis labels
_FONT = 'font-family="system-ui, sans-serif" font-size="11"'
_TITLE_ID, _DESC_ID = "my-data-chart-title", "my-data-chart-desc"
_TICK_EVERY = 7  # a date tick each week: 5 ticks over 30 days, readable at 360 px


def _iso_month_day(day: date) -> str:
    return day.strftime("%m-%d")


@dataclass(frozen=True, slots=True)
class ChartLabels:
    """The chart's words, in the participant's language.

    ``summary`` is a format string with ``{days}`` (days with data), ``{mean_steps}`` and
    ``{mean_hr}`` (whole numbers; ``mean_hr`` is "—" when no day has a resting heart rate).
    ``day_label`` writes a date tick; the default is month-day digits (``11-01``).
    """

    title: str
    steps: str
    resting_hr: str
    no_data: str
    summary: str
    day_label: Callable[[date], str] = _iso_month_day


def chart_svg(data: MyData, labels: ChartLabels) -> str:
    """The chart of ``data.days`` as one ``<svg>`` element (no XML declaration), every text escaped."""
    days = data.days
    with_steps = [p for p in days if p.steps is not None]
    with_hr = [p for p in days if p.resting_hr is not None]
    if not days or not (with_steps or with_hr):
        return _svg(labels.title, labels.no_data, [_no_data(labels.no_data)])
    steps_top = _steps_top(max((p.steps or 0) for p in with_steps) if with_steps else 0)
    hr_low, hr_high = _hr_range([p.resting_hr for p in with_hr if p.resting_hr is not None])
    body = [
        *_grid_and_axes(steps_top, hr_low, hr_high, labels),
        *_bars(days, steps_top),
        *_hr_line(days, hr_low, hr_high),
        *_date_ticks(days, labels.day_label),
    ]
    return _svg(labels.title, _summary(labels.summary, days), body)


def _svg(title: str, desc: str, body: Sequence[str]) -> str:
    return "\n".join([
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_WIDTH} {_HEIGHT}" width="100%" '
        f'role="img" aria-labelledby="{_TITLE_ID} {_DESC_ID}" class="my-data-chart">',
        f'<title id="{_TITLE_ID}">{_text(title)}</title>',
        f'<desc id="{_DESC_ID}">{_text(desc)}</desc>',
        *body,
        "</svg>",
    ])


def _text(value: str) -> str:
    return html.escape(value, quote=True)


def _summary(template: str, days: Sequence[DayPoint]) -> str:
    steps = [p.steps for p in days if p.steps is not None]
    hr = [p.resting_hr for p in days if p.resting_hr is not None]
    with_data = sum(1 for p in days if p.steps is not None or p.resting_hr is not None)
    mean_steps = round(sum(steps) / len(steps)) if steps else 0
    mean_hr: int | str = round(sum(hr) / len(hr)) if hr else "—"
    return template.format(days=with_data, mean_steps=mean_steps, mean_hr=mean_hr)


def _no_data(message: str) -> str:
    return (f'<text x="{_WIDTH // 2}" y="{_HEIGHT // 2}" text-anchor="middle" fill="{TEXT_COLOUR}" {_FONT} '
            f'class="no-data">{_text(message)}</text>')


def _steps_top(highest: int) -> int:
    """The steps axis maximum: the next multiple of 2,000 above the highest day (at least 2,000)."""
    return max(2000, math.ceil(highest / 2000) * 2000)


def _hr_range(values: Sequence[float]) -> tuple[int, int]:
    """The heart-rate axis: whole tens around the values, at least 20 bpm apart so a flat line is not noise."""
    if not values:
        return 50, 90
    low = math.floor((min(values) - 5) / 10) * 10
    high = math.ceil((max(values) + 5) / 10) * 10
    if high - low < 20:
        high = low + 20
    return low, high


def _x(index: int, count: int) -> float:
    """The centre of day ``index`` of ``count``."""
    return _LEFT + (index + 0.5) * (_RIGHT - _LEFT) / count


def _y(value: float, low: float, high: float) -> float:
    return _BOTTOM - (value - low) / (high - low) * (_BOTTOM - _TOP)


def _fmt(value: float) -> str:
    # One decimal is finer than a pixel; fixed formatting keeps the output byte-for-byte stable.
    return f"{value:.1f}"


def _grid_and_axes(steps_top: int, hr_low: int, hr_high: int, labels: ChartLabels) -> list[str]:
    parts = [
        f'<text x="4" y="14" fill="{STEPS_COLOUR}" {_FONT} class="axis-title steps">{_text(labels.steps)}</text>',
        f'<text x="{_WIDTH - 4}" y="14" text-anchor="end" fill="{HR_COLOUR}" {_FONT} '
        f'class="axis-title resting-hr">{_text(labels.resting_hr)}</text>',
    ]
    for share in (0.0, 0.5, 1.0):  # three gridlines: both scales labelled at the same heights
        y = _fmt(_BOTTOM - share * (_BOTTOM - _TOP))
        steps = round(steps_top * share)
        hr = round(hr_low + share * (hr_high - hr_low))
        parts += [
            f'<line x1="{_LEFT}" x2="{_RIGHT}" y1="{y}" y2="{y}" stroke="{_GRID_COLOUR}" stroke-width="1"/>',
            f'<text x="{_LEFT - 4}" y="{y}" dy="4" text-anchor="end" fill="{STEPS_COLOUR}" {_FONT} '
            f'class="tick steps">{steps}</text>',
            f'<text x="{_RIGHT + 4}" y="{y}" dy="4" fill="{HR_COLOUR}" {_FONT} class="tick resting-hr">{hr}</text>',
        ]
    return parts


def _bars(days: Sequence[DayPoint], steps_top: int) -> list[str]:
    width = (_RIGHT - _LEFT) / len(days) * 0.7
    bars = []
    for index, point in enumerate(days):
        if point.steps is None:
            continue
        top = _y(min(point.steps, steps_top), 0, steps_top)
        bars.append(f'<rect class="bar" x="{_fmt(_x(index, len(days)) - width / 2)}" y="{_fmt(top)}" '
                    f'width="{_fmt(width)}" height="{_fmt(_BOTTOM - top)}" fill="{STEPS_COLOUR}"/>')
    return bars


def _hr_line(days: Sequence[DayPoint], low: int, high: int) -> list[str]:
    """A line through the days with a resting heart rate, broken where a day has none, and a point on each."""
    path: list[str] = []
    points: list[str] = []
    previous = False
    for index, point in enumerate(days):
        if point.resting_hr is None:
            previous = False
            continue
        x, y = _fmt(_x(index, len(days))), _fmt(_y(point.resting_hr, low, high))
        path.append(f"{'L' if previous else 'M'}{x} {y}")
        points.append(f'<circle class="hr-point" cx="{x}" cy="{y}" r="3" fill="{HR_COLOUR}"/>')
        previous = True
    if not path:
        return []
    line = f'<path class="hr-line" d="{" ".join(path)}" fill="none" stroke="{HR_COLOUR}" stroke-width="2"/>'
    return [line, *points]


def _date_ticks(days: Sequence[DayPoint], day_label: Callable[[date], str]) -> list[str]:
    # Weekly ticks counted back from the last day, so that today always has one.
    ticks = []
    for index in range(len(days) - 1, -1, -_TICK_EVERY):
        x = _fmt(_x(index, len(days)))
        ticks.append(f'<text x="{x}" y="{_BOTTOM + 16}" text-anchor="middle" fill="{TEXT_COLOUR}" {_FONT} '
                     f'class="tick day">{_text(day_label(days[index].day))}</text>')
    return ticks[::-1]

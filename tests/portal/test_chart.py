"""chart_svg: the structure of the SVG (bars, points, ticks, title and desc) for real and empty data."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import timedelta
from pathlib import Path

from portal.chart import HR_COLOUR, STEPS_COLOUR, TEXT_COLOUR
from portal.my_data import ChartLabels, DayPoint, MyData, chart_svg, my_data
from sinks.dataset import Dataset
from tests.portal.test_my_data import TODAY, A, write_two_participants

SVG = "{http://www.w3.org/2000/svg}"
LABELS = ChartLabels(title="Your last 30 days", steps="Steps", resting_hr="Resting heart rate (bpm)",
                     no_data="No data yet", summary="{days} days with data; {mean_steps} steps and {mean_hr} bpm "
                     "on average")


def _window(values: dict[int, tuple[int | None, float | None]]) -> MyData:
    """30 days ending TODAY; ``values`` maps a day's index (0 = oldest) to (steps, resting HR)."""
    days = tuple(DayPoint(TODAY - timedelta(days=29 - i), *values.get(i, (None, None)), valid=False)
                 for i in range(30))
    return MyData(days_received=len(values), valid_days_30=0, days=days, devices=())


def _tree(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # parsing it also proves the SVG is well-formed XML


def _child_text(root: ET.Element, tag: str) -> str | None:
    element = root.find(f"{SVG}{tag}")
    assert element is not None, tag
    return element.text


def _of_class(root: ET.Element, name: str) -> list[ET.Element]:
    return [e for e in root.iter() if name in (e.get("class") or "").split()]


def test_one_bar_per_day_with_steps_and_one_point_per_heart_rate(tmp_path: Path) -> None:
    dataset = Dataset(str(tmp_path))
    write_two_participants(dataset)
    data = my_data(dataset, A, today=TODAY)
    root = _tree(chart_svg(data, LABELS))
    assert len(_of_class(root, "bar")) == sum(p.steps is not None for p in data.days) == 4
    assert len(_of_class(root, "hr-point")) == sum(p.resting_hr is not None for p in data.days) == 3
    # 9000, 500, 12000, 8000 steps; HR 61, 66.5, 59 → means 7375 and 62
    assert _child_text(root, "desc") == "4 days with data; 7375 steps and 62 bpm on average"


def test_an_accessible_scalable_image() -> None:
    svg = chart_svg(_window({0: (4000, 60.0), 29: (6000, 62.0)}), LABELS)
    root = _tree(svg)
    assert root.get("role") == "img" and root.get("width") == "100%" and root.get("viewBox") == "0 0 360 240"
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert title is not None and desc is not None
    assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
    assert title.text == "Your last 30 days"
    assert "<script" not in svg and "on" + "click" not in svg


def test_both_scales_are_labelled_and_dates_ticked() -> None:
    root = _tree(chart_svg(_window({0: (4000, 60.0), 29: (7000, 64.0)}), LABELS))
    steps_ticks = [e.text for e in _of_class(root, "tick") if "steps" in (e.get("class") or "")]
    hr_ticks = [e.text for e in _of_class(root, "tick") if "resting-hr" in (e.get("class") or "")]
    assert steps_ticks == ["0", "4000", "8000"]
    assert hr_ticks == ["50", "60", "70"]
    days = [e.text for e in _of_class(root, "day")]
    assert days[-1] == "11-30" and days[0] == "11-02" and len(days) == 5
    titles = [e.text for e in _of_class(root, "axis-title")]
    assert titles == ["Steps", "Resting heart rate (bpm)"]


def test_a_gap_breaks_the_heart_rate_line() -> None:
    root = _tree(chart_svg(_window({3: (None, 60.0), 4: (None, 61.0), 10: (None, 70.0)}), LABELS))
    (line,) = _of_class(root, "hr-line")
    assert re.findall("[ML]", line.get("d") or "") == ["M", "L", "M"]
    assert _of_class(root, "bar") == []


def test_no_data_says_so() -> None:
    svg = chart_svg(_window({}), LABELS)
    root = _tree(svg)
    (message,) = _of_class(root, "no-data")
    assert message.text == "No data yet"
    assert root.find(f"{SVG}title") is not None and root.get("role") == "img"
    assert _of_class(root, "bar") == [] and _of_class(root, "hr-point") == []
    empty = MyData(days_received=0, valid_days_30=0, days=(), devices=())
    assert _of_class(_tree(chart_svg(empty, LABELS)), "no-data")


def test_text_is_escaped_and_output_deterministic() -> None:
    hostile = ChartLabels(title="<script>x</script> & co", steps='"Pasos"', resting_hr="FC <en reposo>",
                          no_data="Sin datos", summary="{days} días <b>")
    data = _window({1: (3000, None)})
    svg = chart_svg(data, hostile)
    assert "<script>" not in svg and "<b>" not in svg
    root = _tree(svg)
    assert _child_text(root, "title") == "<script>x</script> & co"
    assert _child_text(root, "desc") == "1 días <b>"
    assert chart_svg(data, hostile) == svg


def test_text_colours_meet_contrast_on_white() -> None:
    def luminance(colour: str) -> float:
        channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    root = _tree(chart_svg(_window({0: (4000, 60.0)}), LABELS))
    used = {e.get("fill") for e in root.iter(f"{SVG}text")}
    assert used == {STEPS_COLOUR, HR_COLOUR, TEXT_COLOUR}
    assert all(1.05 / (luminance(c) + 0.05) >= 4.5 for c in used if c)


def test_a_custom_day_label() -> None:
    labels = ChartLabels(title="t", steps="s", resting_hr="h", no_data="n", summary="{days}",
                         day_label=lambda d: f"{d.day}/{d.month}")
    root = _tree(chart_svg(_window({0: (100, None)}), labels))
    assert [e.text for e in _of_class(root, "day")][-1] == f"{TODAY.day}/{TODAY.month}"

"""Records → researcher table rows (sinks/rows.py): the labelled figures become columns through
the label vocabulary (zone names that hold dots, per-stage minutes, the first sleep figure sent
wins), and short wakes stay out of the sleep levels."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import polars as pl

from models import labels
from models.providers import Provider
from models.samples import Metric, Resolution, SampleBatch, Unit
from sinks.rows import activity_summary, heart_rate_summary, intraday_rows, sleep_daily_summary
from sinks.tables import SLEEP_LEVEL, VENDOR_DAILY, VENDOR_SLEEP

MIDNIGHT = int(datetime(2026, 1, 15, 5, tzinfo=UTC).timestamp())  # local midnight of 2026-01-15 (EST)


def _batch(metric: Metric, unit: Unit, resolution: Resolution, figures: list[tuple[str, float]],
           **columns: Any) -> SampleBatch:
    return SampleBatch(research_id="R1", metric=metric, unit=unit, resolution=resolution, source=Provider.FITBIT,
                       utc_offset_s=-18000, local_date="2026-01-15", timestamps=[MIDNIGHT] * len(figures),
                       values=[v for _, v in figures], labels=[label for label, _ in figures], **columns)


def test_heart_rate_zones_are_parsed_from_their_labels() -> None:
    figures = [(labels.hr_zone(name, field), value) for name in ("Fat Burn", "Zone 2.5")
               for field, value in ((labels.ZONE_MIN, 90.4), (labels.ZONE_MAX, 120.0), (labels.ZONE_MINUTES, 33.0),
                                    (labels.ZONE_CALORIES_OUT, 250.5))]
    daily = intraday_rows([_batch(Metric.VENDOR_DAILY, Unit.MIXED, Resolution.DAY,
                                  [*figures, (labels.STEPS, 9000.0)])])[VENDOR_DAILY]
    zones = heart_rate_summary(daily).sort("zone_name")
    assert zones["zone_name"].to_list() == ["Fat Burn", "Zone 2.5"]
    assert zones.select("min_heart_rate", "max_heart_rate", "minute_in_zone", "calorie_count").row(1) == (
        90, 120, 33, 250.5)


def test_activity_summary_takes_the_vendor_figures_by_label() -> None:
    daily = intraday_rows([_batch(Metric.VENDOR_DAILY, Unit.MIXED, Resolution.DAY, [
        (labels.STEPS, 9000.0), (labels.CALORIES_OUT, 2400.5), (labels.FLOORS, 4.0)])])[VENDOR_DAILY]
    intraday = pl.DataFrame({"person_id": ["R1"], "date": [date(2026, 1, 15)], "src_id": ["fitbit"], "steps": [8000]})
    row = activity_summary(daily, intraday).to_dicts()[0]
    assert (row["steps"], row["calories_out"], row["floors"]) == (9000, 2400.5, 4)


def test_sleep_figures_first_source_sent_wins_and_short_wakes_are_not_levels() -> None:
    attributes = {"log_id": "9", "is_main_sleep": True}
    summary = _batch(Metric.VENDOR_SLEEP, Unit.MIXED, Resolution.EVENT, [
        (labels.MINUTES_ASLEEP, 380.0), (labels.TIME_IN_BED, 420.0), (labels.MINUTES_AWAKE, 40.0),
        (labels.stage_minutes("awake"), 35.0), (labels.stage_minutes("deep"), 90.0)], attributes=attributes)
    stages = SampleBatch(research_id="R1", metric=Metric.SLEEP_STAGE, unit=Unit.SECONDS, resolution=Resolution.SEGMENT,
                         source=Provider.FITBIT, utc_offset_s=-18000, local_date="2026-01-15",
                         timestamps=[MIDNIGHT, MIDNIGHT + 60], values=[600.0, 60.0],
                         labels=["wake", labels.short_level("wake")], durations=[600, 60], attributes=attributes)
    rows = intraday_rows([summary, stages])
    assert rows[SLEEP_LEVEL]["level"].to_list() == ["wake"]
    day = sleep_daily_summary(rows[VENDOR_SLEEP]).to_dicts()[0]
    assert (day["minute_asleep"], day["minute_in_bed"], day["minute_awake"], day["minute_deep"]) == (380, 420, 35, 90)

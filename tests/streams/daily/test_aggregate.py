"""The day's summary fields (streams/daily/aggregate.py) from hand-made samples: steps against the
vendor's total, heart-rate zones with the bounds the vendor sent, sleep from the vendor's figures
or else from the stage segments (short wakes not counted twice)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import polars as pl

from models import labels
from models.providers import Provider
from models.samples import Metric, Resolution, SampleBatch, Unit
from streams.daily.aggregate import DailyRules, summarize
from streams.daily.process import rows_of

OFFSET = -18000  # EST
MIDNIGHT = int(datetime(2026, 1, 15, 5, tzinfo=UTC).timestamp())  # local midnight of 2026-01-15
_UNITS = {Metric.STEPS: Unit.STEPS, Metric.HEART_RATE: Unit.BPM, Metric.SLEEP_STAGE: Unit.SECONDS,
          Metric.VENDOR_DAILY: Unit.MIXED, Metric.VENDOR_SLEEP: Unit.MIXED}
_RESOLUTIONS = {Metric.STEPS: Resolution.MINUTE, Metric.HEART_RATE: Resolution.MINUTE,
                Metric.SLEEP_STAGE: Resolution.SEGMENT, Metric.VENDOR_DAILY: Resolution.DAY,
                Metric.VENDOR_SLEEP: Resolution.EVENT}


def _batch(metric: Metric, timestamps: list[int], values: list[float], **columns: Any) -> SampleBatch:
    return SampleBatch(research_id="R1", metric=metric, unit=_UNITS[metric], resolution=_RESOLUTIONS[metric],
                       source=Provider.FITBIT, utc_offset_s=OFFSET, local_date="2026-01-15", timestamps=timestamps,
                       values=values, **columns)


def _summary(*batches: SampleBatch) -> dict[str, Any]:
    rows = summarize(rows_of(batches), DailyRules()).to_dicts()
    assert len(rows) == 1 and rows[0]["key"] == "R1|2026-01-15"
    return rows[0]


def test_steps_are_the_intraday_sum_and_the_vendor_total_is_kept_apart() -> None:
    hours = [MIDNIGHT + 3600 * h + 60 * m for h in range(8, 20) for m in (0, 1)]  # 12 hours with steps
    summary = _summary(_batch(Metric.STEPS, hours, [10.0] * len(hours)),
                       _batch(Metric.VENDOR_DAILY, [MIDNIGHT], [999.0], labels=[labels.STEPS]))
    assert (summary["steps"], summary["vendor_steps"], summary["hours_with_steps"]) == (240, 999, 12)
    assert summary["valid_day"] is True


def test_zone_minutes_use_the_bounds_the_vendor_sent() -> None:
    minutes = [MIDNIGHT + 60 * m for m in range(4)]
    heart = _batch(Metric.HEART_RATE, minutes, [80.0, 100.0, 140.0, 160.0])
    default = _summary(heart)
    assert [default[f"zone_{i}"] for i in range(4)] == [1, 1, 1, 1]  # Out of Range, Fat Burn, Cardio, Peak
    sent = _summary(heart, _batch(Metric.VENDOR_DAILY, [MIDNIGHT], [135.0], labels=[labels.hr_zone("Peak", "min")]))
    assert [sent[f"zone_{i}"] for i in range(4)] == [1, 1, 0, 2]
    assert (sent["hr_min"], sent["hr_max"], sent["minutes_with_hr"]) == (80.0, 160.0, 4)


def test_sleep_minutes_prefer_the_vendor_figures_and_skip_short_wakes() -> None:
    start = MIDNIGHT + 3600
    stages = _batch(Metric.SLEEP_STAGE, [start, start + 600, start + 3600], [600.0, 3000.0, 60.0],
                    labels=["wake", "deep", labels.short_level("wake")], durations=[600, 3000, 60])
    derived = _summary(stages)
    assert (derived["sleep_minutes_asleep"], derived["sleep_minutes_in_bed"]) == (50, 60)
    assert dict(zip(derived["stage_labels"], derived["stage_minutes"], strict=True)) == {"wake": 10, "deep": 50}
    vendor = _summary(stages, _batch(Metric.VENDOR_SLEEP, [start, start], [48.0, 61.0],
                                     labels=[labels.MINUTES_ASLEEP, labels.TIME_IN_BED]))
    assert (vendor["sleep_minutes_asleep"], vendor["sleep_minutes_in_bed"]) == (48, 61)


def test_the_vendor_resting_rate_is_read_from_its_label() -> None:
    summary = _summary(_batch(Metric.VENDOR_DAILY, [MIDNIGHT, MIDNIGHT], [58.0, 2000.0],
                              labels=[labels.RESTING_HEART_RATE, labels.CALORIES_OUT]))
    assert summary["vendor_resting_hr"] == 58.0 and summary["steps"] == 0
    assert pl.Series([summary["vendor_steps"]]).is_null().all()

"""Physiological ranges (streams/normalize/validate.py): each rule and its reason."""

from __future__ import annotations

import polars as pl
import pytest

from models.errors import Reason
from models.samples import Metric, Resolution
from streams.normalize.validate import reject_reasons


def _reasons(metric: Metric, resolution: Resolution, values: list[float | None]) -> list[str | None]:
    frame = pl.DataFrame({"value": values, "ts": [1] * len(values), "time_reason": [None] * len(values)},
                         schema={"value": pl.Float64, "ts": pl.Int64, "time_reason": pl.String})
    return frame.select(reason=reject_reasons(metric, resolution))["reason"].to_list()


@pytest.mark.parametrize(("metric", "resolution", "values", "reasons"), [
    (Metric.HEART_RATE, Resolution.MINUTE, [19.9, 20.0, 250.0, 250.1],
     [Reason.HR_OUT_OF_RANGE, None, None, Reason.HR_OUT_OF_RANGE]),
    (Metric.STEPS, Resolution.MINUTE, [-1.0, 0.0, 1000.0, 1000.5],
     [Reason.NEGATIVE_STEPS, None, None, Reason.STEPS_PER_MINUTE_TOO_HIGH]),
    (Metric.STEPS, Resolution.SEGMENT, [5000.0], [None]),  # a long interval may hold many steps
    (Metric.SLEEP_STAGE, Resolution.SEGMENT, [-1.0, 0.0], [Reason.BAD_FIELD, None]),
    (Metric.VENDOR_DAILY, Resolution.DAY, [None, float("nan"), float("inf"), -5.0],
     [Reason.NOT_A_NUMBER, Reason.NOT_A_NUMBER, Reason.NOT_A_NUMBER, None]),
])
def test_each_rule_gives_its_reason(metric: Metric, resolution: Resolution, values: list[float | None],
                                    reasons: list[Reason | None]) -> None:
    assert _reasons(metric, resolution, values) == [r.value if r else None for r in reasons]


def test_a_missing_time_wins_and_keeps_the_normalizers_reason() -> None:
    frame = pl.DataFrame({"value": [500.0, 80.0], "ts": [None, None],
                          "time_reason": [None, Reason.NONEXISTENT_LOCAL_TIME.value]},
                         schema={"value": pl.Float64, "ts": pl.Int64, "time_reason": pl.String})
    got = frame.select(reason=reject_reasons(Metric.HEART_RATE, Resolution.MINUTE))["reason"].to_list()
    assert got == [Reason.BAD_TIME.value, Reason.NONEXISTENT_LOCAL_TIME.value]

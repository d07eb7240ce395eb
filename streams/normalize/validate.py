"""Physiological ranges: split a frame of samples into accepted and rejected, with reasons.

Limits follow docs/architecture.md ("Semantics"): heart rate 20-250 bpm; steps never negative
and at most 1,000 in a minute. A null value (missing or not a number) is rejected too.
Vectorised: one pass of Polars expressions, no Python loop per sample.
"""

from __future__ import annotations

import polars as pl
from polars.expr.whenthen import ChainedThen, Then

from models.errors import Reason
from models.samples import Metric, Resolution

__all__ = ["HR_MAX", "HR_MIN", "STEPS_PER_MINUTE_MAX", "reject_reasons"]

HR_MIN, HR_MAX = 20.0, 250.0
STEPS_PER_MINUTE_MAX = 1000.0


def reject_reasons(metric: Metric, resolution: Resolution) -> pl.Expr:
    """An expression giving each row's reject reason (String), or null when the row is good.

    Expects columns ``value`` (Float64, null when unusable), ``ts`` (null when the time is) and
    ``time_reason`` (why ``ts`` is null, when the normalizer knows better than "bad_time").
    """
    value = pl.col("value")
    rule: Then | ChainedThen = pl.when(pl.col("ts").is_null()).then(
        pl.col("time_reason").fill_null(Reason.BAD_TIME.value))
    rule = rule.when(value.is_null() | value.is_nan() | value.is_infinite()).then(pl.lit(Reason.NOT_A_NUMBER.value))
    if metric is Metric.HEART_RATE:
        rule = rule.when((value < HR_MIN) | (value > HR_MAX)).then(pl.lit(Reason.HR_OUT_OF_RANGE.value))
    elif metric is Metric.STEPS:
        rule = rule.when(value < 0).then(pl.lit(Reason.NEGATIVE_STEPS.value))
        if resolution in (Resolution.MINUTE, Resolution.SECOND):
            rule = rule.when(value > STEPS_PER_MINUTE_MAX).then(pl.lit(Reason.STEPS_PER_MINUTE_TOO_HIGH.value))
    elif metric is Metric.SLEEP_STAGE:
        rule = rule.when(value < 0).then(pl.lit(Reason.BAD_FIELD.value))
    return rule.otherwise(pl.lit(None, dtype=pl.String))

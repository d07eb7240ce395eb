"""Pure, vectorised: topic records → rows of the researcher tables.

``intraday`` batches (deduplicated new or changed samples) become rows of the sample-level
tables (``device`` among them: one row per device sync) and of two staging tables that keep
the vendor's labelled figures long (``_staging/vendor_daily``, ``_staging/vendor_sleep``); the
All of Us day tables (``activity_summary``, ``heart_rate_summary``, ``sleep_daily_summary``)
are recomputed from those for every date that changed, because one page may revise only some
figures of a day.
``daily`` records become ``daily_summary`` rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from models import labels
from models.daily import HR_ZONES, DailySummary
from models.samples import Metric, SampleBatch
from sinks.tables import (
    ACTIVITY_SUMMARY,
    DAILY_SUMMARY,
    DEVICE,
    HEART_RATE_MINUTE_LEVEL,
    HEART_RATE_SUMMARY,
    SLEEP_DAILY_SUMMARY,
    SLEEP_LEVEL,
    STEPS_INTRADAY,
    VENDOR_DAILY,
    VENDOR_SLEEP,
    Table,
)
from streams.daily.process import rows_of

__all__ = ["activity_summary", "daily_summary_rows", "heart_rate_summary",
           "intraday_rows", "sleep_daily_summary"]

_ZONE_FIELDS = {labels.ZONE_MIN: "min_heart_rate", labels.ZONE_MAX: "max_heart_rate",
                labels.ZONE_MINUTES: "minute_in_zone", labels.ZONE_CALORIES_OUT: "calorie_count"}
_SLEEP_FIELDS = {  # sleep_daily_summary column → the labels it is read from, the first one sent winning
    "minute_in_bed": [labels.TIME_IN_BED], "minute_asleep": [labels.MINUTES_ASLEEP],
    "minute_after_wakeup": [labels.MINUTES_AFTER_WAKEUP],
    "minute_awake": [labels.stage_minutes("awake"), labels.MINUTES_AWAKE],
    **{f"minute_{s}": [labels.stage_minutes(s)] for s in ("restless", "deep", "light", "rem", "wake")}}


def intraday_rows(batches: Sequence[SampleBatch]) -> dict[Table, pl.DataFrame]:
    """Rows of the sample-level tables and the staging tables, from ``intraday`` batches."""
    long = _long(batches)
    local = pl.from_epoch(pl.col("ts") + pl.col("offset"), time_unit="s").cast(pl.Datetime("us"))
    date = pl.col("local_date").str.to_date()
    of = long.filter
    return {
        HEART_RATE_MINUTE_LEVEL: of(pl.col("metric") == Metric.HEART_RATE.value).select(
            datetime=local, heart_rate_value=pl.col("value").round().cast(pl.Int64), person_id="person_id",
            src_id="src_id"),
        STEPS_INTRADAY: of(pl.col("metric") == Metric.STEPS.value).select(
            datetime=local, steps="value", person_id="person_id", src_id="src_id"),
        SLEEP_LEVEL: of((pl.col("metric") == Metric.SLEEP_STAGE.value)
                        & ~pl.col("label").str.starts_with(labels.SHORT_PREFIX))
        .select("person_id", sleep_date=date, is_main_sleep="is_main_sleep", level="label", start_datetime=local,
                duration_in_min=pl.col("duration").cast(pl.Float64).fill_null(pl.col("value")) / 60, src_id="src_id"),
        DEVICE: of(pl.col("metric") == Metric.DEVICE.value).select(
            "person_id", device_id="label", device_date=date, battery=_attribute("battery"),
            battery_level=pl.col("value").round().cast(pl.Int64), device_version=_attribute("device_version"),
            device_type=_attribute("device_type"), last_sync_time=local, src_id="src_id"),
        VENDOR_DAILY: of(pl.col("metric") == Metric.VENDOR_DAILY.value).select(
            "person_id", date=date, label="label", value="value", src_id="src_id"),
        VENDOR_SLEEP: of(pl.col("metric") == Metric.VENDOR_SLEEP.value).select(
            "person_id", sleep_date=date, log_id="log_id", is_main_sleep="is_main_sleep", label="label",
            value="value", src_id="src_id"),
    }


def _long(batches: Sequence[SampleBatch]) -> pl.DataFrame:
    """Every sample of ``batches`` as one row (the daily agent's ``rows_of``), batch fields alongside."""
    rows = rows_of(batches, extra={"src_id": lambda b: b.source.value})
    return rows.with_columns(
        person_id=pl.col("key").str.split_exact("|", 1).struct.field("field_0"),
        local_date=pl.col("key").str.split_exact("|", 1).struct.field("field_1"),
        is_main_sleep=pl.col("attrs").str.json_path_match("$.is_main_sleep"),
        log_id=pl.col("attrs").str.json_path_match("$.log_id").fill_null(""),
    )


def _attribute(name: str) -> pl.Expr:
    """A batch attribute's text (null when the batch has none, or sent it as null)."""
    return pl.col("attrs").str.json_path_match(f"$.{name}")


def daily_summary_rows(summaries: Sequence[DailySummary]) -> pl.DataFrame:
    """``daily_summary`` rows; of several records of one day, the one with the highest revision."""
    latest: dict[str, DailySummary] = {}
    for s in summaries:
        if s.key not in latest or s.revision >= latest[s.key].revision:
            latest[s.key] = s
    zones = [f"minutes_{z.lower().replace(' ', '_')}" for z in HR_ZONES]
    rows = [{
        "person_id": s.research_id, "date": s.local_date, "steps": s.steps, "vendor_steps": s.vendor_steps,
        "hr_min": s.hr_min, "hr_max": s.hr_max, "hr_mean": s.hr_mean, "minutes_with_hr": s.minutes_with_hr,
        "vendor_resting_hr": s.vendor_resting_hr, "approx_resting_hr": s.approx_resting_hr,
        **{column: s.zone_minutes.get(zone) for column, zone in zip(zones, HR_ZONES, strict=True)},
        "hours_with_steps": s.hours_with_steps, "valid_day": s.valid_day,
        "sleep_minutes_asleep": s.sleep_minutes_asleep, "sleep_minutes_in_bed": s.sleep_minutes_in_bed,
        "samples": s.samples, "rejects": s.rejects,
        "first_sample_at": None if s.first_sample_at is None else s.first_sample_at * 1_000_000,
        "last_sample_at": None if s.last_sample_at is None else s.last_sample_at * 1_000_000,
        "src_id": s.source,
    } for s in latest.values()]
    frame = pl.DataFrame(rows, schema_overrides={"date": pl.String, "first_sample_at": pl.Int64,
                                                  "last_sample_at": pl.Int64}, infer_schema_length=None)
    if frame.is_empty():
        return DAILY_SUMMARY.empty()
    return DAILY_SUMMARY.conform(frame.with_columns(
        pl.col("date").str.to_date(),
        pl.col("first_sample_at", "last_sample_at").cast(pl.Datetime("us", "UTC"))))


def activity_summary(vendor_daily: pl.DataFrame, daily: pl.DataFrame) -> pl.DataFrame:
    """``activity_summary`` rows for the days in either input: vendor figures, steps falling back
    to the intraday sum."""
    wide = _pivot(vendor_daily, ["person_id", "date"], [*labels.ACTIVITY_FIGURES, labels.STEPS])
    days = pl.concat([wide.select("person_id", "date", "src_id"), daily.select("person_id", "date", "src_id")])
    days = days.unique(subset=["person_id", "date"], keep="first", maintain_order=True)
    out = (days.join(wide.drop("src_id"), on=["person_id", "date"], how="left")
           .join(daily.select("person_id", "date", intraday_steps="steps"), on=["person_id", "date"], how="left"))
    return ACTIVITY_SUMMARY.conform(out.with_columns(
        steps=pl.col("steps").round().cast(pl.Int64).fill_null(pl.col("intraday_steps")),
        floors=pl.col("floors").round().cast(pl.Int64)))


def heart_rate_summary(vendor_daily: pl.DataFrame) -> pl.DataFrame:
    """``heart_rate_summary`` rows: the zones the vendor sent (``hr_zone.<name>.<field>`` figures)."""
    zone = labels.HR_ZONE_PATTERN  # the vectorised parse_hr_zone: group 1 the zone name, group 2 the field
    zones = vendor_daily.filter(pl.col("label").str.contains(zone)).with_columns(
        zone_name=pl.col("label").str.extract(zone, 1), label=pl.col("label").str.extract(zone, 2))
    wide = _pivot(zones, ["person_id", "date", "zone_name"], list(_ZONE_FIELDS))
    return HEART_RATE_SUMMARY.conform(wide.rename(_ZONE_FIELDS).with_columns(
        pl.col("min_heart_rate", "max_heart_rate", "minute_in_zone").round().cast(pl.Int64)))


def sleep_daily_summary(vendor_sleep: pl.DataFrame) -> pl.DataFrame:
    """``sleep_daily_summary`` rows: per date and main-sleep flag, the logs' figures summed."""
    keys = ["person_id", "sleep_date", "is_main_sleep"]
    labels = sorted({label for sources in _SLEEP_FIELDS.values() for label in sources})
    per_log = _pivot(vendor_sleep, [*keys, "log_id"], labels)
    summed = per_log.group_by(keys, maintain_order=True).agg(
        pl.col("src_id").first(), *[pl.col(label).sum().alias(label) for label in labels],
        *[pl.col(label).is_not_null().any().alias(f"has:{label}") for label in labels])
    columns = {}
    for column, sources in _SLEEP_FIELDS.items():
        chosen = pl.lit(None, dtype=pl.Float64)
        for label in reversed(sources):  # the first source the vendor sent wins
            chosen = pl.when(pl.col(f"has:{label}")).then(pl.col(label)).otherwise(chosen)
        columns[column] = chosen.round().cast(pl.Int64)
    return SLEEP_DAILY_SUMMARY.conform(summed.with_columns(**columns))


def _pivot(long: pl.DataFrame, index: list[str], labels: list[str]) -> pl.DataFrame:
    """Labels → columns (one per name in ``labels``, null where absent), plus the first ``src_id``."""
    keys = long.select(*index, "src_id").unique(subset=index, keep="first", maintain_order=True)
    return keys.join(long.group_by(index).agg(
        *[pl.col("value").filter(pl.col("label") == label).last().alias(label) for label in labels]),
        on=index, how="left")

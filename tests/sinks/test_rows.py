"""Records → researcher table rows (sinks/rows.py): the labelled figures become columns through
the label vocabulary (zone names that hold dots, per-stage minutes, the first sleep figure sent
wins), and short wakes stay out of the sleep levels; device syncs become device rows, and a Google
night fills the sleep tables as the same Fitbit night does."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import orjson
import polars as pl

from models import labels
from models.providers import Provider
from models.raw import RawPage
from models.samples import Metric, Resolution, SampleBatch, Unit
from sinks.rows import activity_summary, heart_rate_summary, intraday_rows, sleep_daily_summary
from sinks.tables import DEVICE, SLEEP_DAILY_SUMMARY, SLEEP_LEVEL, VENDOR_DAILY, VENDOR_SLEEP
from streams.normalize import normalize
from tests.builders import SECRET, fitbit_page, google_page

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


def test_device_batches_become_device_rows_in_local_time() -> None:
    def device(label: str, ts: int, level: float | None, battery: str | None) -> SampleBatch:
        return SampleBatch(research_id="R1", metric=Metric.DEVICE, unit=Unit.PERCENT, resolution=Resolution.EVENT,
                           source=Provider.GOOGLE_HEALTH, utc_offset_s=-18000, local_date="2026-01-15",
                           timestamps=[ts], values=[level], labels=[label],
                           attributes={"device_id": label, "battery": battery, "device_version": "Charge 6",
                                       "device_type": "TRACKER"})

    rows = intraday_rows([device("D0123456789abcdef", MIDNIGHT + 3600, 79.6, "High"),
                          device("Dfedcba9876543210", MIDNIGHT + 3600, None, None)])[DEVICE]
    assert rows.select("device_id", "device_date", "battery", "battery_level", "last_sync_time").rows() == [
        ("D0123456789abcdef", date(2026, 1, 15), "High", 80, datetime(2026, 1, 15, 1)),
        ("Dfedcba9876543210", date(2026, 1, 15), None, None, datetime(2026, 1, 15, 1))]
    assert DEVICE.conform(rows).schema == DEVICE.schema and rows["src_id"].to_list() == ["google_health"] * 2


def _fitbit_night() -> RawPage:
    return fitbit_page("sleep", orjson.dumps({"sleep": [{
        "dateOfSleep": "2026-11-03", "startTime": "2026-11-02T23:00:00.000", "isMainSleep": True, "logId": 1,
        "type": "stages", "minutesAsleep": 60, "minutesAwake": 30, "timeInBed": 90,
        "levels": {"data": [{"dateTime": "2026-11-02T23:00:00.000", "level": "wake", "seconds": 1800},
                            {"dateTime": "2026-11-02T23:30:00.000", "level": "deep", "seconds": 3600}],
                   "summary": {"wake": {"count": 1, "minutes": 30}, "deep": {"count": 1, "minutes": 60}}}}]}),
        day=date(2026, 11, 3), detail=None)


def _google_night() -> RawPage:
    """The same night as ``_fitbit_night`` in v4's shape: no mainSleep, AWAKE for the wake stage."""
    stage = {"startUtcOffset": "-18000s", "endUtcOffset": "-18000s"}
    return google_page("sleep", [{"name": "users/me/dataTypes/sleep/dataPoints/1", "sleep": {
        "type": "STAGES", "metadata": {"nap": False},
        "interval": {"startTime": "2026-11-03T04:00:00Z", "endTime": "2026-11-03T05:30:00Z", **stage},
        "summary": {"minutesAsleep": "60", "minutesAwake": "30", "minutesInSleepPeriod": "90",
                    "stagesSummary": [{"type": "AWAKE", "minutes": "30"}, {"type": "DEEP", "minutes": "60"}]},
        "stages": [{"type": "AWAKE", "startTime": "2026-11-03T04:00:00Z", "endTime": "2026-11-03T04:30:00Z", **stage},
                   {"type": "DEEP", "startTime": "2026-11-03T04:30:00Z", "endTime": "2026-11-03T05:30:00Z", **stage}],
    }}])


def test_a_google_night_fills_the_sleep_tables_as_the_same_fitbit_night_does() -> None:
    def tables(page: RawPage) -> tuple[list[Any], list[Any]]:
        rows = intraday_rows(normalize(page, "R1", secret=SECRET).batches)
        levels = rows[SLEEP_LEVEL].drop("src_id").sort("start_datetime").rows()
        return levels, sleep_daily_summary(rows[VENDOR_SLEEP]).drop("src_id").rows()

    fitbit, google = tables(_fitbit_night()), tables(_google_night())
    assert google == fitbit
    levels, (day,) = google
    assert [row[3] for row in levels] == ["wake", "deep"]  # sleep_level.level
    summary = dict(zip(SLEEP_DAILY_SUMMARY.schema.names()[:-1], day, strict=True))
    assert (summary["is_main_sleep"], summary["minute_wake"], summary["minute_deep"], summary["minute_awake"]) == (
        "true", 30, 60, 30)

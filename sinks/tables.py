"""The researcher tables: All of Us column names and types, plus our ``daily_summary``.

One definition per table feeds the Parquet writer, the tests and ``docs/data_dictionary.md``
(``wearables dictionary``). Column lists and types follow the All of Us curation schemas
(docs/vendors.md, "All of Us tables"), BigQuery types mapped to Polars: integer → Int64,
float and numeric → Float64, string → String, date → Date, datetime → Datetime
(microseconds, no time zone: the participant's local wall-clock time, as Fitbit reports
it). Two deliberate differences: ``person_id`` holds our pseudonymous research_id (a string,
``R`` + 20 hex digits), not an All of Us integer person id; and ``device.battery_level`` is an
integer percentage (All of Us types it a string holding one), so that researchers and the
compliance metrics need no cast.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from runtime.settings import DailySettings

__all__ = ["STAGING", "TABLES", "VALID_DAY_RULE", "Column", "Table", "make_table"]

def _default(field: str) -> int:
    value: int = getattr(DailySettings(), field)
    return value


# Built from the settings' defaults so that the data dictionary cannot drift from the code.
VALID_DAY_RULE = (f"a day is valid when it has at least {_default('valid_day_min_hours')} local clock hours with "
                  f"steps > 0 and {_default('valid_day_min_steps'):,} <= steps <= {_default('valid_day_max_steps'):,} "
                  "(defaults; a deployment may change them with WEARABLES_VALID_DAY_MIN_HOURS, _MIN_STEPS and "
                  "_MAX_STEPS)")

_PERSON = ("person_id", pl.String(), "", "the participant's pseudonymous research ID (keyed HMAC of the "
           "cohort's participant ID); never the vendor user ID", "record key of every topic")
_SRC = ("src_id", pl.String(), "", "the vendor API the data came from: `fitbit` (Fitbit Web API) or "
        "`google_health` (Google Health API)", "raw page metadata `provider`")


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    dtype: pl.DataType
    unit: str
    meaning: str
    provenance: str


@dataclass(frozen=True, slots=True)
class Table:
    """A table: its columns in order, the columns that identify a row, and its date partition column."""

    name: str
    description: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    partition_by: str  # a Date column, or a Datetime column partitioned by its date
    all_of_us: bool = True

    @property
    def schema(self) -> pl.Schema:
        return pl.Schema({c.name: c.dtype for c in self.columns})

    def empty(self) -> pl.DataFrame:
        return pl.DataFrame(schema=self.schema)

    def conform(self, frame: pl.DataFrame) -> pl.DataFrame:
        """``frame`` with exactly this table's columns, in order and of its types (missing ones null)."""
        return frame.select([
            (pl.col(c.name) if c.name in frame.columns else pl.lit(None)).cast(c.dtype).alias(c.name)
            for c in self.columns])


def make_table(name: str, description: str, columns: list[tuple[str, pl.DataType, str, str, str]],
           key: tuple[str, ...], partition_by: str, *, all_of_us: bool = True) -> Table:
    return Table(name, description, tuple(Column(*c) for c in columns), key, partition_by, all_of_us)


_ACTIVITY = "Fitbit daily activity summary `summary."
ACTIVITY_SUMMARY = make_table(
    "activity_summary", "One row per participant-day: the vendor's own daily activity figures.", [
        ("date", pl.Date(), "", "the participant's local calendar date", "page `date` / `activities-*[0].dateTime`"),
        ("activity_calories", pl.Float64(), "kcal", "calories burned above the sedentary level",
         f"{_ACTIVITY}activityCalories`"),
        ("calories_bmr", pl.Float64(), "kcal", "basal metabolic rate calories", f"{_ACTIVITY}caloriesBMR`"),
        ("calories_out", pl.Float64(), "kcal", "total calories burned that day", f"{_ACTIVITY}caloriesOut`"),
        ("elevation", pl.Float64(), "ft or m", "elevation climbed (unit as the vendor account is set)",
         f"{_ACTIVITY}elevation`"),
        ("fairly_active_minutes", pl.Float64(), "min", "minutes fairly active", f"{_ACTIVITY}fairlyActiveMinutes`"),
        ("floors", pl.Int64(), "floors", "floors climbed (1 floor = 10 ft)", f"{_ACTIVITY}floors`"),
        ("lightly_active_minutes", pl.Float64(), "min", "minutes lightly active",
         f"{_ACTIVITY}lightlyActiveMinutes`"),
        ("marginal_calories", pl.Float64(), "kcal", "marginal calories", f"{_ACTIVITY}marginalCalories`"),
        ("sedentary_minutes", pl.Float64(), "min", "minutes sedentary", f"{_ACTIVITY}sedentaryMinutes`"),
        ("steps", pl.Int64(), "steps", "the vendor's daily step total; when the vendor sent none, the sum of the "
         "deduplicated minute steps (daily_summary.steps)", f"{_ACTIVITY}steps` or `activities-steps[0].value`, "
         "else daily_summary.steps"),
        ("very_active_minutes", pl.Float64(), "min", "minutes very active", f"{_ACTIVITY}veryActiveMinutes`"),
        _PERSON, _SRC,
    ], ("person_id", "date"), "date")

HEART_RATE_SUMMARY = make_table(
    "heart_rate_summary", "One row per participant-day and heart-rate zone, as the vendor reported the zones.", [
        _PERSON,
        ("date", pl.Date(), "", "the participant's local calendar date", "page `date`"),
        ("zone_name", pl.String(), "", "Out of Range, Fat Burn, Cardio or Peak", "`heartRateZones[].name`"),
        ("min_heart_rate", pl.Int64(), "bpm", "the zone's lower bound", "`heartRateZones[].min`"),
        ("max_heart_rate", pl.Int64(), "bpm", "the zone's upper bound", "`heartRateZones[].max`"),
        ("minute_in_zone", pl.Int64(), "min", "minutes the vendor counted in the zone", "`heartRateZones[].minutes`"),
        ("calorie_count", pl.Float64(), "kcal", "calories burned in the zone", "`heartRateZones[].caloriesOut`"),
        _SRC,
    ], ("person_id", "date", "zone_name"), "date")

HEART_RATE_MINUTE_LEVEL = make_table(
    "heart_rate_minute_level", "Deduplicated heart-rate samples (minute level, or second level when fetched so).", [
        ("datetime", pl.Datetime("us"), "", "local wall-clock time of the sample",
         "`activities-heart-intraday.dataset[].time` on the page date; Google Health sample time + UTC offset"),
        ("heart_rate_value", pl.Int64(), "bpm", "heart rate", "`activities-heart-intraday.dataset[].value`"),
        _PERSON, _SRC,
    ], ("person_id", "datetime"), "datetime")

STEPS_INTRADAY = make_table(
    "steps_intraday", "Deduplicated step counts per minute.", [
        ("datetime", pl.Datetime("us"), "", "local wall-clock time of the minute",
         "`activities-steps-intraday.dataset[].time` on the page date"),
        ("steps", pl.Float64(), "steps", "steps in the minute (BigQuery NUMERIC in All of Us)",
         "`activities-steps-intraday.dataset[].value`"),
        _PERSON, _SRC,
    ], ("person_id", "datetime"), "datetime")

_SLEEP = "sleep log v1.2 `sleep[]."
_SLEEP_DATE = ("sleep_date", pl.Date(), "", "the local date the sleep log ended", f"{_SLEEP}dateOfSleep`")
_MAIN_SLEEP = ("is_main_sleep", pl.String(), "", "'true' for the main sleep of the night, 'false' for naps",
               f"{_SLEEP}isMainSleep`")
SLEEP_DAILY_SUMMARY = make_table(
    "sleep_daily_summary", "Per participant, date the sleep ended and main-sleep flag: the vendor's sleep figures "
    "(several logs of one kind on one date are summed).", [
        _PERSON, _SLEEP_DATE, _MAIN_SLEEP,
        ("minute_in_bed", pl.Int64(), "min", "time in bed", f"{_SLEEP}timeInBed`"),
        ("minute_asleep", pl.Int64(), "min", "minutes asleep", f"{_SLEEP}minutesAsleep`"),
        ("minute_after_wakeup", pl.Int64(), "min", "minutes in bed after waking", f"{_SLEEP}minutesAfterWakeup`"),
        ("minute_awake", pl.Int64(), "min", "minutes awake (classic logs)", "`levels.summary.awake.minutes`"),
        ("minute_restless", pl.Int64(), "min", "minutes restless (classic logs)", "`levels.summary.restless.minutes`"),
        ("minute_deep", pl.Int64(), "min", "minutes in deep sleep (stages logs)", "`levels.summary.deep.minutes`"),
        ("minute_light", pl.Int64(), "min", "minutes in light sleep (stages logs)", "`levels.summary.light.minutes`"),
        ("minute_rem", pl.Int64(), "min", "minutes in REM sleep (stages logs)", "`levels.summary.rem.minutes`"),
        ("minute_wake", pl.Int64(), "min", "minutes awake (stages logs)", "`levels.summary.wake.minutes`"),
        _SRC,
    ], ("person_id", "sleep_date", "is_main_sleep"), "sleep_date")

SLEEP_LEVEL = make_table(
    "sleep_level", "One row per sleep-stage segment (`levels.data`; the short wake periods of `shortData` are "
    "left out, as in All of Us).", [
        _PERSON, _SLEEP_DATE, _MAIN_SLEEP,
        ("level", pl.String(), "", "wake, light, deep, rem (stages) or asleep, restless, awake (classic)",
         "`levels.data[].level`"),
        ("start_datetime", pl.Datetime("us"), "", "local wall-clock start of the segment", "`levels.data[].dateTime`"),
        ("duration_in_min", pl.Float64(), "min", "length of the segment", "`levels.data[].seconds` / 60"),
        _SRC,
    ], ("person_id", "start_datetime"), "sleep_date")

_SYNC = ("Fitbit `devices[].lastSyncTime` (local); Google Health `pairedDevices[].lastSyncTime` (UTC) in the "
         "participant's time zone")
DEVICE = make_table(
    "device", "One row per participant, device and sync seen: the device's battery at its last sync (a device "
    "that syncs again gets a row per sync).", [
        _PERSON,
        ("device_id", pl.String(), "", "the device's keyed pseudonym (`D` + 16 hex digits, stable per participant "
         "and device); never the vendor's device id", "keyed HMAC of Fitbit `id`; Google Health `name`, else "
         "`deviceType` + `deviceVersion`"),
        ("device_date", pl.Date(), "", "the participant's local date of the sync", _SYNC),
        ("battery", pl.String(), "", "the vendor's battery word: High, Medium, Low or Empty (Fitbit); Google "
         "Health's battery status as it sends it", "Fitbit `battery`; Google Health `batteryStatus`"),
        ("battery_level", pl.Int64(), "%", "battery charge in percent; null when the vendor sent none (an INTEGER "
         "here, a STRING in All of Us)", "`batteryLevel`"),
        ("device_version", pl.String(), "", "the product name (e.g. Charge 6)", "`deviceVersion`"),
        ("device_type", pl.String(), "", "TRACKER or SCALE (Fitbit); Google Health's device type as it sends it",
         "Fitbit `type`; Google Health `deviceType`"),
        ("last_sync_time", pl.Datetime("us"), "", "local wall-clock time of the device's last sync with the "
         "vendor's app (a DATETIME as in All of Us: no time zone, like every datetime of these tables)", _SYNC),
        _SRC,
    ], ("person_id", "device_id", "last_sync_time"), "device_date")

_DERIVED = "derived by the daily agent from the deduplicated samples"
DAILY_SUMMARY = make_table(
    "daily_summary", "One row per participant-day: our derived daily figures (latest revision of the `daily` topic; "
    "its processing fields, revision and final, stay on the topic so that a replay of the same input writes the "
    "same rows).", [
        _PERSON,
        ("date", pl.Date(), "", "the participant's local calendar date", "`daily` record `local_date`"),
        ("steps", pl.Int64(), "steps", "sum of the deduplicated minute steps of the local day", _DERIVED),
        ("vendor_steps", pl.Int64(), "steps", "the vendor's own daily total, when it sent one (kept beside `steps`)",
         "`activities-steps[0].value` / `summary.steps`"),
        ("hr_min", pl.Float64(), "bpm", "lowest heart-rate sample of the day", _DERIVED),
        ("hr_max", pl.Float64(), "bpm", "highest heart-rate sample of the day", _DERIVED),
        ("hr_mean", pl.Float64(), "bpm", "mean of the day's heart-rate samples", _DERIVED),
        ("minutes_with_hr", pl.Int64(), "min", "minutes with a heart rate > 0 (wear time)", _DERIVED),
        ("vendor_resting_hr", pl.Float64(), "bpm", "the vendor's resting heart rate, when it sent one",
         "`activities-heart[0].value.restingHeartRate`"),
        ("approx_resting_hr", pl.Float64(), "bpm", "10th percentile of heart rate in local 10-minute windows that "
         "are fully worn and without steps (approximate resting heart rate)", _DERIVED),
        ("minutes_out_of_range", pl.Int64(), "min", "minutes (per-minute mean HR) below the Fat Burn zone", _DERIVED),
        ("minutes_fat_burn", pl.Int64(), "min", "minutes in the Fat Burn zone (vendor bounds, else defaults)",
         _DERIVED),
        ("minutes_cardio", pl.Int64(), "min", "minutes in the Cardio zone", _DERIVED),
        ("minutes_peak", pl.Int64(), "min", "minutes in the Peak zone", _DERIVED),
        ("hours_with_steps", pl.Int64(), "h", "local clock hours with steps > 0 (wear time)", _DERIVED),
        ("valid_day", pl.Boolean(), "", VALID_DAY_RULE, _DERIVED),
        ("sleep_minutes_asleep", pl.Int64(), "min", "minutes asleep in logs ending this day (vendor figure, else "
         "from the stages)", f"{_SLEEP}minutesAsleep`"),
        ("sleep_minutes_in_bed", pl.Int64(), "min", "minutes in bed in logs ending this day",
         f"{_SLEEP}timeInBed`"),
        ("samples", pl.Int64(), "", "deduplicated samples of the day, all metrics", _DERIVED),
        ("rejects", pl.Int64(), "", "samples of the day the normalizer rejected (each reason in the dead-letter topic)",
         _DERIVED),
        ("first_sample_at", pl.Datetime("us", "UTC"), "", "first step or heart-rate sample of the day (UTC)", _DERIVED),
        ("last_sample_at", pl.Datetime("us", "UTC"), "", "last step or heart-rate sample of the day (UTC)", _DERIVED),
        _SRC,
    ], ("person_id", "date"), "date", all_of_us=False)

# Staging: the vendor's labelled figures kept long, from which the day tables are recomputed.
_LABEL = ("label", pl.String(), "", "the figure's name (normalizer label)", "sample batch `labels[]`")
_VALUE = ("value", pl.Float64(), "", "the figure as the vendor sent it", "sample batch `values[]`")
VENDOR_DAILY = make_table("_staging/vendor_daily", "The vendor's daily figures, one row per figure.", [
    _PERSON, ("date", pl.Date(), "", "the participant's local calendar date", "sample batch `local_date`"),
    _LABEL, _VALUE, _SRC,
], ("person_id", "date", "label"), "date", all_of_us=False)
VENDOR_SLEEP = make_table("_staging/vendor_sleep", "The vendor's per-log sleep figures, one row per figure.", [
    _PERSON, _SLEEP_DATE, ("log_id", pl.String(), "", "the vendor's sleep log id", "attributes `log_id`"),
    _MAIN_SLEEP, _LABEL, _VALUE, _SRC,
], ("person_id", "sleep_date", "log_id", "label"), "sleep_date", all_of_us=False)

TABLES: dict[str, Table] = {t.name: t for t in (
    ACTIVITY_SUMMARY, HEART_RATE_SUMMARY, HEART_RATE_MINUTE_LEVEL, STEPS_INTRADAY, SLEEP_DAILY_SUMMARY, SLEEP_LEVEL,
    DEVICE, DAILY_SUMMARY)}

STAGING: tuple[Table, ...] = (VENDOR_DAILY, VENDOR_SLEEP)

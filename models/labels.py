"""The label vocabulary of labelled samples, written once as code.

Four metrics carry a label per sample (``SampleBatch.labels``); every other metric carries none:

- ``Metric.VENDOR_DAILY``: a vendor's own daily figure. One of ``DAILY_FIGURES`` (named as in
  the All of Us ``activity_summary`` table), or a heart-rate zone figure ``hr_zone(name, field)``,
  e.g. ``hr_zone.Fat Burn.minutes`` (a zone name may hold spaces and dots).
- ``Metric.VENDOR_SLEEP``: a sleep log's own figures. One of ``SLEEP_FIGURES``, or the minutes
  of one stage, ``stage_minutes(level)``, e.g. ``stage.deep.minutes``.
- ``Metric.SLEEP_STAGE``: the level of each segment, lower case as the vendor names it
  (``wake``, ``light``, ``deep``, ``rem``; classic logs ``asleep``, ``restless``, ``awake``).
  Fitbit's short wakes (``levels.shortData``) are ``short_level(level)``, e.g. ``short:wake``,
  so that they overlap the long segments without being counted twice. Google Health stage
  types are mapped onto these Fitbit levels by ``google_sleep_level`` (the table
  ``GOOGLE_SLEEP_LEVELS``), so both vendors fill the same All of Us columns.
- ``Metric.DEVICE``: the device's keyed pseudonym (``D`` + 16 hex digits, ``DEVICE_LABEL_PATTERN``),
  so that two devices of one participant syncing in the same second are two samples, not a
  sample and its revision (sample identity includes the label).

Normalizers write these labels; ``streams.daily.aggregate`` and ``sinks.rows`` read them.
Labels are plain ``str`` on the wire (orjson refuses enum members as object keys), so the
names here are constants and builders, not an enum.
"""

from __future__ import annotations

import re
from typing import Final

from models.samples import Metric

__all__ = [
    "ACTIVITY_CALORIES", "ACTIVITY_FIGURES", "AWAKE_LEVELS", "CALORIES_BMR", "CALORIES_OUT", "DAILY_FIGURES",
    "DEVICE_LABEL_PATTERN", "DISTANCE", "EFFICIENCY", "ELEVATION", "FAIRLY_ACTIVE_MINUTES", "FLOORS",
    "GOOGLE_SLEEP_LEVELS", "HR_ZONE_FIELDS", "HR_ZONE_PATTERN", "LIGHTLY_ACTIVE_MINUTES", "MARGINAL_CALORIES",
    "MINUTES_AFTER_WAKEUP", "MINUTES_ASLEEP", "MINUTES_AWAKE", "MINUTES_TO_FALL_ASLEEP", "RESTING_HEART_RATE",
    "SEDENTARY_MINUTES", "SHORT_PREFIX", "SLEEP_FIGURES", "STAGE_MINUTES_PATTERN", "STEPS", "TIME_IN_BED",
    "VERY_ACTIVE_MINUTES", "ZONE_CALORIES_OUT", "ZONE_MAX", "ZONE_MIN", "ZONE_MINUTES", "google_sleep_level",
    "hr_zone", "is_valid_label", "parse_hr_zone", "parse_stage_minutes", "short_level", "stage_minutes",
]

# ----------------------------------------------------------------------------- daily figures (VENDOR_DAILY)
STEPS: Final = "steps"
CALORIES_OUT: Final = "calories_out"
CALORIES_BMR: Final = "calories_bmr"
ACTIVITY_CALORIES: Final = "activity_calories"
MARGINAL_CALORIES: Final = "marginal_calories"
SEDENTARY_MINUTES: Final = "sedentary_minutes"
LIGHTLY_ACTIVE_MINUTES: Final = "lightly_active_minutes"
FAIRLY_ACTIVE_MINUTES: Final = "fairly_active_minutes"
VERY_ACTIVE_MINUTES: Final = "very_active_minutes"
FLOORS: Final = "floors"
ELEVATION: Final = "elevation"
DISTANCE: Final = "distance"
RESTING_HEART_RATE: Final = "resting_heart_rate"

#: The figures that are columns of the All of Us ``activity_summary`` table as they are (steps aside:
#: that column falls back to the intraday sum).
ACTIVITY_FIGURES: Final = (ACTIVITY_CALORIES, CALORIES_BMR, CALORIES_OUT, ELEVATION, FAIRLY_ACTIVE_MINUTES, FLOORS,
                           LIGHTLY_ACTIVE_MINUTES, MARGINAL_CALORIES, SEDENTARY_MINUTES, VERY_ACTIVE_MINUTES)
#: Every plain daily figure (heart-rate zone figures are built by ``hr_zone``).
DAILY_FIGURES: Final = frozenset({*ACTIVITY_FIGURES, STEPS, DISTANCE, RESTING_HEART_RATE})

# ----------------------------------------------------------------------------- heart-rate zones (VENDOR_DAILY)
ZONE_MINUTES: Final = "minutes"
ZONE_MIN: Final = "min"  # the zone's lower bound (bpm)
ZONE_MAX: Final = "max"
ZONE_CALORIES_OUT: Final = "calories_out"
HR_ZONE_FIELDS: Final = (ZONE_MINUTES, ZONE_MIN, ZONE_MAX, ZONE_CALORIES_OUT)
#: ``hr_zone.<name>.<field>``: group 1 the zone name (which may hold dots), group 2 the field.
#: For vectorised use (``pl.col("label").str.extract(HR_ZONE_PATTERN, 1)``); ``parse_hr_zone`` agrees.
HR_ZONE_PATTERN: Final = r"^hr_zone\.(.+)\.([^.]+)$"
_HR_ZONE = re.compile(HR_ZONE_PATTERN)


def hr_zone(name: str, field: str) -> str:
    """The label of one figure of one heart-rate zone: ``hr_zone("Peak", ZONE_MIN)`` is ``hr_zone.Peak.min``."""
    return f"hr_zone.{name}.{field}"


def parse_hr_zone(label: str) -> tuple[str, str] | None:
    """``(zone name, field)`` of a heart-rate zone label, else None."""
    match = _HR_ZONE.match(label)
    return (match[1], match[2]) if match else None


# ----------------------------------------------------------------------------- sleep log figures (VENDOR_SLEEP)
MINUTES_ASLEEP: Final = "minutes_asleep"
MINUTES_AWAKE: Final = "minutes_awake"
MINUTES_AFTER_WAKEUP: Final = "minutes_after_wakeup"
MINUTES_TO_FALL_ASLEEP: Final = "minutes_to_fall_asleep"
TIME_IN_BED: Final = "time_in_bed"
EFFICIENCY: Final = "efficiency"
#: Every plain sleep figure (per-stage minutes are built by ``stage_minutes``).
SLEEP_FIGURES: Final = frozenset({MINUTES_ASLEEP, MINUTES_AWAKE, MINUTES_AFTER_WAKEUP, MINUTES_TO_FALL_ASLEEP,
                                  TIME_IN_BED, EFFICIENCY})
#: ``stage.<level>.minutes``: group 1 the level.
STAGE_MINUTES_PATTERN: Final = r"^stage\.(.+)\.minutes$"
_STAGE_MINUTES = re.compile(STAGE_MINUTES_PATTERN)


def stage_minutes(level: str) -> str:
    """The label of a sleep log's minutes in one stage: ``stage_minutes("deep")`` is ``stage.deep.minutes``."""
    return f"stage.{level}.minutes"


def parse_stage_minutes(label: str) -> str | None:
    """The level of a ``stage.<level>.minutes`` label, else None."""
    match = _STAGE_MINUTES.match(label)
    return match[1] if match else None


# ----------------------------------------------------------------------------- stage levels (SLEEP_STAGE)
#: Prefix of Fitbit's short wakes (``levels.shortData``): they lie inside long segments, so
#: minute counts skip them.
SHORT_PREFIX: Final = "short:"
#: Levels that are not sleep (stages ``wake``, classic ``awake`` and ``restless``).
AWAKE_LEVELS: Final = ("wake", "awake", "restless")


#: Google Health sleep stage ``type`` → our level, per session ``type``. Fitbit names the awake
#: level ``wake`` in stages logs and ``awake`` in classic ones, and All of Us keeps both
#: (``sleep_daily_summary.minute_wake`` for stages, ``minute_awake`` for classic), so Google's one
#: ``AWAKE`` maps by the session's type: a Google night lands in the columns a Fitbit night fills.
GOOGLE_SLEEP_LEVELS: Final = {
    "STAGES": {"AWAKE": "wake", "LIGHT": "light", "DEEP": "deep", "REM": "rem"},
    "CLASSIC": {"AWAKE": "awake", "ASLEEP": "asleep", "RESTLESS": "restless"},
}


def google_sleep_level(session_type: str, stage_type: str) -> str:
    """Our level of a Google stage type in a session of ``session_type`` (``STAGES`` or ``CLASSIC``).

    A type outside the session type's table (``ASLEEP`` in a stages session, a type added
    later) keeps its own name in lower case, as Fitbit's levels are spelled.
    """
    return GOOGLE_SLEEP_LEVELS.get(session_type.upper(), {}).get(stage_type.upper(), stage_type.lower())


def short_level(level: object) -> str:
    """The label of a short-wake segment of ``level``: ``short_level("wake")`` is ``short:wake``."""
    return f"{SHORT_PREFIX}{level}"


# ----------------------------------------------------------------------------- devices (DEVICE)
#: A device sample's label: the keyed pseudonym of the device (never the vendor's id).
DEVICE_LABEL_PATTERN: Final = r"^D[0-9a-f]{16}$"
_DEVICE_LABEL = re.compile(DEVICE_LABEL_PATTERN)


def is_valid_label(metric: Metric, label: str) -> bool:
    """Whether ``label`` belongs to the vocabulary of ``metric`` (unlabelled metrics have none)."""
    if metric is Metric.VENDOR_DAILY:
        return label in DAILY_FIGURES or parse_hr_zone(label) is not None
    if metric is Metric.VENDOR_SLEEP:
        return label in SLEEP_FIGURES or parse_stage_minutes(label) is not None
    if metric is Metric.SLEEP_STAGE:
        return bool(label.removeprefix(SHORT_PREFIX))
    if metric is Metric.DEVICE:
        return _DEVICE_LABEL.match(label) is not None
    return False

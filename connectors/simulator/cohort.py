"""A deterministic synthetic cohort: participant IDs and their minute-level days, rendered in
the vendors' own JSON shapes (docs/vendors.md, Fitbit Web API and Google Health API).

Steps and heart rate follow a diurnal pattern (asleep at night, active bursts by day) so that
daily summaries look like real ones; the same seed always gives the same bytes. Each night is a
sleep log with stages (light, deep, REM in ~90-minute cycles, brief wakes) from the previous
evening's bedtime to the morning's wake-up, the same instants the step series goes quiet and
resumes; a few nights have no log (the watch was on the charger).

Real cohorts are not complete (the Fitabase export: 739 of 919 participant-days are valid days), so
the cohort can leave gaps, each drawn per (seed, participant, day) and off unless asked for
(``SimulatorOptions`` asks, with shares near the real ones; ``SimulatorOptions.complete()`` does not):

- ``non_wear_share``: days the tracker stayed off the wrist: no steps, no heart rate, no sleep log;
- ``partial_day_share``: days worn only 3-8 hours while awake (< 10 clock hours with steps, so not a
  valid day), with no sleep log the night before;
- ``never_sync_share``: participants who link but whose tracker never syncs: no data on any day.

``worn`` tells which minutes of a day the tracker was on the wrist.
"""

from __future__ import annotations

import hashlib
import random
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import orjson

__all__ = ["SleepNight", "SyntheticCohort", "utc_offset_s"]

_MINUTES = 1440
_MINUTE = np.arange(1440)
_DIURNAL = 6 * np.sin((_MINUTE - 360) / 1440 * 2 * np.pi)  # lowest in the small hours, highest mid-afternoon
_NO_SLEEP_LOG = 0.05  # share of nights without a log
_AWAKE_LEVELS = frozenset({"wake"})


def utc_offset_s(moment: datetime) -> int:
    """The UTC offset of an aware datetime, in seconds (``utcoffset()`` is None only for a naive one)."""
    offset = moment.utcoffset()
    assert offset is not None, "a zone-aware datetime"
    return int(offset.total_seconds())


@dataclass(frozen=True, slots=True)
class SleepNight:
    """The main sleep that ended on a local day: it starts ``start_minute`` minutes from that day's
    local midnight (negative: the evening before) and runs through ``stages``, elapsed minutes."""

    start_minute: int
    stages: tuple[tuple[str, int], ...]  # (wake|light|deep|rem, minutes), in order

    @property
    def minutes_in_bed(self) -> int:
        return sum(minutes for _, minutes in self.stages)

    @property
    def minutes_asleep(self) -> int:
        return sum(minutes for level, minutes in self.stages if level not in _AWAKE_LEVELS)

    def minutes_by_level(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for level, minutes in self.stages:
            totals[level] = totals.get(level, 0) + minutes
        return totals


_ZONES = ("America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles", "America/Anchorage",
          "Pacific/Honolulu", "America/Puerto_Rico")


class SyntheticCohort:
    """``participants`` synthetic people with IDs ``P`` + 10 digits.

        cohort = SyntheticCohort(participants=20, seed=7)
        body = cohort.fitbit_steps_intraday(cohort.participant_ids[0], date(2026, 11, 1))
    """

    def __init__(self, participants: int, *, seed: int = 0, non_wear_share: float = 0.0,
                 partial_day_share: float = 0.0, never_sync_share: float = 0.0) -> None:
        if participants < 1:
            raise ValueError("participants must be >= 1")
        shares = (non_wear_share, partial_day_share, never_sync_share)
        if not all(0.0 <= share <= 1.0 for share in shares) or non_wear_share + partial_day_share > 1.0:
            raise ValueError("the shares must be within 0..1, and non-wear plus partial days at most 1")
        self.seed = seed
        self.non_wear_share, self.partial_day_share, self.never_sync_share = shares
        rng = random.Random(seed)
        ids: set[str] = set()
        while len(ids) < participants:
            ids.add(f"P{rng.randrange(10**9, 10**10)}")
        self.participant_ids: list[str] = sorted(ids)

    def timezone(self, participant_id: str) -> str:
        """The participant's IANA time zone (as the Fitbit profile reports it)."""
        return _ZONES[random.Random(f"{self.seed}|{participant_id}|tz").randrange(len(_ZONES))]

    def never_syncs(self, participant_id: str) -> bool:
        """Whether the participant's tracker never syncs (linked, but no data on any day)."""
        return random.Random(f"{self.seed}|{participant_id}|never-sync").random() < self.never_sync_share

    def worn(self, participant_id: str, day: date) -> tuple[int, int]:
        """The local minutes [start, end) the tracker was on the wrist that day: (0, 1440) all day,
        (0, 0) not at all (a non-wear day, or a participant who never syncs), else a partial day's
        3-8 waking hours."""
        if self.never_syncs(participant_id):
            return 0, 0
        if not self.non_wear_share and not self.partial_day_share:
            return 0, _MINUTES
        rng = self._rng(participant_id, day, "wear")
        draw = rng.random()
        if draw < self.non_wear_share:
            return 0, 0
        if draw >= self.non_wear_share + self.partial_day_share:
            return 0, _MINUTES
        _, wake, sleep = self._waking_hours(participant_id, day)
        length = int(rng.integers(180, 481))  # 3-8 hours, within the (14-18 h) waking day
        start = int(rng.integers(wake, sleep - length + 1))
        return start, start + length

    def _rng(self, participant_id: str, day: date, stream: str) -> np.random.Generator:
        digest = hashlib.sha256(f"{self.seed}|{participant_id}|{day.isoformat()}|{stream}".encode()).digest()
        return np.random.default_rng(int.from_bytes(digest[:8], "little"))

    def _waking_hours(self, participant_id: str, day: date) -> tuple[np.random.Generator, int, int]:
        """(the day's step generator, wake-up minute, bedtime minute): the first draws of the
        step stream, so that sleep logs and step series agree."""
        rng = self._rng(participant_id, day, "steps")
        return rng, int(rng.integers(360, 481)), int(rng.integers(1320, 1411))

    def sleep_night(self, participant_id: str, day: date) -> SleepNight | None:
        """The main sleep ending on local ``day``: bedtime of the day before to wake-up."""
        rng = self._rng(participant_id, day, "sleep")
        if rng.random() < _NO_SLEEP_LOG or self.worn(participant_id, day) != (0, _MINUTES):
            return None  # on the charger, or not worn that morning
        bedtime = self._waking_hours(participant_id, day - timedelta(days=1))[2] - _MINUTES
        in_bed = self._waking_hours(participant_id, day)[1] - bedtime
        stages: list[tuple[str, int]] = [("wake", int(rng.integers(4, 21)))]  # falling asleep
        left, cycle = in_bed - stages[0][1], 0
        while left > 0:
            deep = max(5, int(rng.integers(20, 41)) - 8 * cycle)  # deep sleep thins out towards morning
            for level, minutes in (("light", int(rng.integers(15, 41))), ("deep", deep),
                                   ("light", int(rng.integers(10, 26))), ("rem", int(rng.integers(8, 21)) + 5 * cycle),
                                   ("wake", int(rng.integers(1, 6)) if rng.random() < 0.4 else 0)):
                minutes = min(minutes, left)
                if minutes:
                    stages.append((level, minutes))
                    left -= minutes
            cycle += 1
        return SleepNight(bedtime, tuple(stages))

    def minute_steps(self, participant_id: str, day: date) -> list[int]:
        """Steps per local minute: none asleep, none in 55% of waking minutes, short walks in 4%;
        none while the tracker is off the wrist (``worn``).

        numpy, one draw per series: the simulator generates a participant-day per request burst,
        and the connector benchmark's 10,000 people must not wait on it.
        """
        rng, wake, sleep = self._waking_hours(participant_id, day)
        idle = ~((_MINUTE >= wake) & (_MINUTE < sleep)) | (rng.random(_MINUTES) < 0.55)
        walking = rng.random(_MINUTES) < 0.04
        steps = np.where(walking, rng.integers(80, 131, _MINUTES), rng.integers(0, 26, _MINUTES))
        start, end = self.worn(participant_id, day)
        idle |= (_MINUTE < start) | (_MINUTE >= end)
        per_minute: list[int] = np.where(idle, 0, steps).tolist()  # numpy's tolist() is typed Any
        return per_minute

    def resting_heart_rate(self, participant_id: str, day: date) -> int:
        """The day's resting heart rate, the base of its minute series (the vendors' daily figure)."""
        return self._resting(self._rng(participant_id, day, "hr"))

    @staticmethod
    def _resting(rng: np.random.Generator) -> int:
        return int(rng.integers(52, 73))  # the first draw of the day's heart-rate stream

    def basal_calories(self, participant_id: str) -> int:
        """The participant's basal metabolic rate, kcal a day (Fitbit's ``caloriesBMR`` of a whole day)."""
        return random.Random(f"{self.seed}|{participant_id}|bmr").randrange(1350, 1951)

    def minute_heart_rate(self, participant_id: str, day: date, steps: list[int] | None = None) -> list[int | None]:
        """Heart rate per local minute (None: off-wrist, 3%, and whenever the tracker is not worn):
        resting + diurnal swing + effort + noise. ``steps`` is that day's ``minute_steps`` when the
        caller has it already."""
        rng = self._rng(participant_id, day, "hr")
        resting = self._resting(rng)
        walked = np.asarray(self.minute_steps(participant_id, day) if steps is None else steps)
        start, end = self.worn(participant_id, day)
        off_wrist = (rng.random(_MINUTES) < 0.03) | (_MINUTE < start) | (_MINUTE >= end)
        rates = np.rint(resting + _DIURNAL + walked * 0.45 + rng.normal(0.0, 2.5, _MINUTES)).astype(np.int64)
        values: list[int | None] = rates.tolist()
        for minute in np.flatnonzero(off_wrist).tolist():
            values[minute] = None
        return values

    def fitbit_steps_intraday(self, participant_id: str, day: date) -> bytes:
        """The body of ``GET /1/user/-/activities/steps/date/{day}/1d/1min.json``."""
        steps = self.minute_steps(participant_id, day)
        dataset = [{"time": f"{m // 60:02d}:{m % 60:02d}:00", "value": v} for m, v in enumerate(steps)]
        return orjson.dumps({
            "activities-steps": [{"dateTime": day.isoformat(), "value": str(sum(steps))}],
            "activities-steps-intraday": {"dataset": dataset, "datasetInterval": 1, "datasetType": "minute"},
        })

    def fitbit_heart_intraday(self, participant_id: str, day: date) -> bytes:
        """The body of ``GET /1/user/-/activities/heart/date/{day}/1d/1min.json``."""
        rates = self.minute_heart_rate(participant_id, day)
        dataset = [
            {"time": f"{m // 60:02d}:{m % 60:02d}:00", "value": v} for m, v in enumerate(rates) if v is not None
        ]
        return orjson.dumps({
            "activities-heart": [{"dateTime": day.isoformat(), "value": {"customHeartRateZones": [],
                                                                       "heartRateZones": []}}],
            "activities-heart-intraday": {"dataset": dataset, "datasetInterval": 1, "datasetType": "minute"},
        })

    def google_steps(self, participant_id: str, day: date) -> bytes:
        """A Google Health v4 ``steps`` list page for one local day (minutes with steps only)."""
        zone = zoneinfo.ZoneInfo(self.timezone(participant_id))
        points = []
        for minute, count in enumerate(self.minute_steps(participant_id, day)):
            if count == 0:
                continue
            local = datetime(day.year, day.month, day.day, tzinfo=zone) + timedelta(minutes=minute)
            start = local.astimezone(UTC)
            offset = f"{utc_offset_s(local)}s"
            points.append({"name": f"users/me/dataTypes/steps/dataPoints/{day:%Y%m%d}{minute:04d}",
                           "steps": {"count": str(count), "interval": {
                               "startTime": f"{start:%Y-%m-%dT%H:%M:%SZ}",
                               "endTime": f"{start + timedelta(minutes=1):%Y-%m-%dT%H:%M:%SZ}",
                               "startUtcOffset": offset, "endUtcOffset": offset}}})
        return orjson.dumps({"dataPoints": points})

    def google_heart_rate(self, participant_id: str, day: date) -> bytes:
        """A Google Health v4 ``heart-rate`` list page for one local day (one sample a minute)."""
        zone = zoneinfo.ZoneInfo(self.timezone(participant_id))
        points = []
        for minute, bpm in enumerate(self.minute_heart_rate(participant_id, day)):
            if bpm is None:
                continue
            local = datetime(day.year, day.month, day.day, tzinfo=zone) + timedelta(minutes=minute)
            points.append({"heartRate": {"beatsPerMinute": str(bpm), "sampleTime": {
                "physicalTime": f"{local.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}",
                "utcOffset": f"{utc_offset_s(local)}s"}}})
        return orjson.dumps({"dataPoints": points})

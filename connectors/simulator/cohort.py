"""A deterministic synthetic cohort: participant IDs and their minute-level days, rendered in
the vendors' own JSON shapes (research/fitbit_allofus.md §2).

Steps and heart rate follow a diurnal pattern (asleep at night, active bursts by day) so that
daily summaries look like real ones; the same seed always gives the same bytes.
"""

from __future__ import annotations

import math
import random
import zoneinfo
from datetime import UTC, date, datetime, timedelta

import orjson

__all__ = ["SyntheticCohort"]

_MINUTES = 1440
_ZONES = ("America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles", "America/Anchorage",
          "Pacific/Honolulu", "America/Puerto_Rico")


class SyntheticCohort:
    """``participants`` synthetic people with IDs ``P`` + 10 digits.

        cohort = SyntheticCohort(participants=20, seed=7)
        body = cohort.fitbit_steps_intraday(cohort.participant_ids[0], date(2026, 11, 1))
    """

    def __init__(self, participants: int, *, seed: int = 0) -> None:
        if participants < 1:
            raise ValueError("participants must be >= 1")
        self.seed = seed
        rng = random.Random(seed)
        ids: set[str] = set()
        while len(ids) < participants:
            ids.add(f"P{rng.randrange(10**9, 10**10)}")
        self.participant_ids: list[str] = sorted(ids)

    def timezone(self, participant_id: str) -> str:
        """The participant's IANA time zone (as the Fitbit profile reports it)."""
        return _ZONES[random.Random(f"{self.seed}|{participant_id}|tz").randrange(len(_ZONES))]

    def _rng(self, participant_id: str, day: date, stream: str) -> random.Random:
        return random.Random(f"{self.seed}|{participant_id}|{day.isoformat()}|{stream}")

    def minute_steps(self, participant_id: str, day: date) -> list[int]:
        rng = self._rng(participant_id, day, "steps")
        wake, sleep = rng.randint(360, 480), rng.randint(1320, 1410)
        steps = []
        for minute in range(_MINUTES):
            if not wake <= minute < sleep or rng.random() < 0.55:
                steps.append(0)
            elif rng.random() < 0.04:  # a walk
                steps.append(rng.randint(80, 130))
            else:
                steps.append(rng.randint(0, 25))
        return steps

    def minute_heart_rate(self, participant_id: str, day: date) -> list[int | None]:
        rng = self._rng(participant_id, day, "hr")
        resting = rng.randint(52, 72)
        steps = self.minute_steps(participant_id, day)
        rates: list[int | None] = []
        for minute, walked in enumerate(steps):
            if rng.random() < 0.03:  # off-wrist: no reading
                rates.append(None)
                continue
            diurnal = 6 * math.sin((minute - 360) / _MINUTES * 2 * math.pi)
            rates.append(round(resting + diurnal + walked * 0.45 + rng.gauss(0, 2.5)))
        return rates

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
            offset = f"{int(local.utcoffset().total_seconds())}s"  # type: ignore[union-attr]
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
                "utcOffset": f"{int(local.utcoffset().total_seconds())}s"}}})  # type: ignore[union-attr]
        return orjson.dumps({"dataPoints": points})

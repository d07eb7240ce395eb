"""Response bodies in the vendors' JSON shapes, cut to what each device has synced: Fitbit's
intraday days, daily activity summary and sleep logs; Google's steps, heart-rate, daily
resting heart rate and sleep data points (the devices: ``devices.py``)."""

from __future__ import annotations

import functools
import hashlib
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import orjson

from connectors.simulator.cohort import SleepNight, utc_offset_s
from connectors.simulator.world import Account, World

__all__ = ["SleepSession", "fitbit_activity_summary", "fitbit_day", "fitbit_sleep", "google_page", "google_points",
           "google_resting", "google_sleep", "google_sleep_sessions"]

_Kept = TypeVar("_Kept")  # a sample tuple or a sleep session


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}:00"


def fitbit_day(world: World, account: Account, resource: str, day: date) -> bytes:
    """``/1/user/-/activities/{steps|heart}/date/{day}/1d/1min.json`` as far as the device has synced."""
    visible = world.visible_minutes(account, day)
    steps, rates = world.series(account.participant_id, day)
    if resource == "steps":
        dataset = [{"time": _clock(m), "value": steps[m]} for m in range(visible)]
        return orjson.dumps({
            "activities-steps": [{"dateTime": day.isoformat(), "value": str(sum(steps[:visible]))}],
            "activities-steps-intraday": {"dataset": dataset, "datasetInterval": 1, "datasetType": "minute"}})
    dataset = [{"time": _clock(m), "value": rates[m]} for m in range(visible) if rates[m] is not None]
    return orjson.dumps({
        "activities-heart": [{"dateTime": day.isoformat(), "value": {"customHeartRateZones": [],
                                                                   "heartRateZones": []}}],
        "activities-heart-intraday": {"dataset": dataset, "datasetInterval": 1, "datasetType": "minute"}})


# --------------------------------------------------------------------------- Fitbit activity summary
# Fitbit's default zones at a maximum heart rate of 180 (name, lowest bpm, kcal a minute in it)
_ZONES = (("Out of Range", 30, 1.2), ("Fat Burn", 90, 5.0), ("Cardio", 126, 8.5), ("Peak", 153, 11.0))
_ZONE_TOP = 220
_KCAL_PER_STEP, _KM_PER_STEP = 0.045, 0.00075
_GOALS = {"activeMinutes": 30, "caloriesOut": 2500, "distance": 8.05, "floors": 10, "steps": 10000,
          "activeZoneMinutes": 22}


def fitbit_activity_summary(world: World, account: Account, day: date) -> bytes:
    """``/1/user/-/activities/date/{day}.json``: the day's totals as far as the device has synced,
    computed from the same minutes the intraday pages serve (steps = their sum).

    How the figures follow the minutes (inference; the API only names them): very active ≥ 100
    steps a minute, fairly 60-99, lightly 1-59, every other synced minute sedentary; calories are
    the basal rate over the synced minutes plus 0.045 kcal a step; 0.75 m a step; a floor per 15
    very active minutes; zones from the synced heart-rate minutes.
    """
    visible = world.visible_minutes(account, day)
    steps, rates = world.series(account.participant_id, day)
    walked, beats = steps[:visible], [r for r in rates[:visible] if r is not None]
    very = sum(1 for s in walked if s >= 100)
    fairly = sum(1 for s in walked if 60 <= s < 100)
    lightly = sum(1 for s in walked if 0 < s < 60)
    total = sum(walked)
    basal = round(world.cohort.basal_calories(account.participant_id) * visible / 1440)
    active = round(total * _KCAL_PER_STEP)
    distance = round(total * _KM_PER_STEP, 2)
    floors = very // 15
    summary: dict[str, Any] = {
        "activeScore": -1, "activityCalories": active, "caloriesBMR": basal, "caloriesOut": basal + active,
        "distances": [{"activity": "total", "distance": distance}, {"activity": "tracker", "distance": distance},
                      {"activity": "loggedActivities", "distance": 0}],
        "elevation": round(floors * 3.048, 2), "fairlyActiveMinutes": fairly, "floors": floors,
        "heartRateZones": _zones(beats), "lightlyActiveMinutes": lightly, "marginalCalories": round(active * 0.55),
        "sedentaryMinutes": visible - very - fairly - lightly, "steps": total, "veryActiveMinutes": very,
    }
    if beats:  # Fitbit leaves the resting rate out of a day it has no heart rate for
        summary["restingHeartRate"] = world.cohort.resting_heart_rate(account.participant_id, day)
    return orjson.dumps({"activities": [], "goals": _GOALS, "summary": summary})


def _zones(beats: list[int]) -> list[dict[str, Any]]:
    zones = []
    for i, (name, low, kcal) in enumerate(_ZONES):
        high = _ZONES[i + 1][1] if i + 1 < len(_ZONES) else _ZONE_TOP
        minutes = sum(1 for b in beats if low <= b < high) + (sum(1 for b in beats if b < low) if i == 0 else 0)
        zones.append({"caloriesOut": round(minutes * kcal, 4), "max": high, "min": low, "minutes": minutes,
                      "name": name})
    return zones


# --------------------------------------------------------------------------- Google data points
def google_points(world: World, account: Account, data_type: str, start: float, end: float
                  ) -> list[tuple[int, int, int]]:
    """Every synced ``steps`` / ``heart-rate`` sample with a physical time in [start, end), as
    (epoch seconds, value, UTC offset seconds); ``google_page`` renders a page of them."""
    zone = zoneinfo.ZoneInfo(account.timezone)
    first = datetime.fromtimestamp(start, zone).date()
    last = datetime.fromtimestamp(max(start, end - 1), zone).date()
    limit = min(end, account.synced_until)
    points: list[tuple[int, int, int]] = []
    day = first
    while day <= last:
        if world.first_day <= day <= world.last_day:
            steps, rates = world.series(account.participant_id, day)
            values = steps if data_type == "steps" else rates
            points.extend(p for p in _day_times(day, zone, values) if start <= p[0] < limit)
        day += timedelta(days=1)
    return _kept(points, world.deleted(account.participant_id, data_type), lambda point: point[0])


def _day_times(day: date, zone: zoneinfo.ZoneInfo, values: list[int] | list[int | None]
               ) -> list[tuple[int, int, int]]:
    """(epoch, value, offset) of the day's non-empty minutes; Google lists only minutes with steps,
    and no heart-rate point while the watch was off-wrist."""
    midnight = datetime(day.year, day.month, day.day, tzinfo=zone)
    offset = utc_offset_s(midnight)
    late = midnight.replace(hour=23, minute=59)
    if utc_offset_s(late) == offset:
        base = int(midnight.timestamp())  # no clock change today: plain arithmetic
        return [(base + 60 * m, v, offset) for m, v in enumerate(values) if v]
    result = []  # a DST day: wall-clock minutes, as the device records them
    for minute, value in enumerate(values):
        if value:
            local = midnight + timedelta(minutes=minute)
            result.append((int(local.timestamp()), value, utc_offset_s(local)))
    return result


_STEPS = ('{"name":"users/me/dataTypes/steps/dataPoints/%d","steps":{"count":"%d","interval":{"startTime":"%s",'
          '"endTime":"%s","startUtcOffset":"%ds","endUtcOffset":"%ds"}}}')
_HEART = '{"heartRate":{"beatsPerMinute":"%d","sampleTime":{"physicalTime":"%s","utcOffset":"%ds"}}}'


def google_page(data_type: str, points: list[tuple[int, int, int]], next_token: str | None = None) -> bytes:
    """A ``dataPoints`` list response in the Google Health v4 JSON shape (int64 values as strings);
    an empty list is left out, as proto3 JSON does (``{}``, or just the token).

    Rendered from string templates, not dicts: the simulator has to outpace the scheduler in the
    connector benchmark, and the shape is fixed.
    """
    if not points:
        return f'{{"nextPageToken":"{next_token}"}}'.encode() if next_token else b"{}"
    if data_type == "steps":
        rendered = [_STEPS % (stamp, value, _utc(stamp), _utc(stamp + 60), offset, offset)
                    for stamp, value, offset in points]
    else:
        rendered = [_HEART % (value, _utc(stamp), offset) for stamp, value, offset in points]
    tail = f'],"nextPageToken":"{next_token}"}}' if next_token else "]}"
    return ('{"dataPoints":[' + ",".join(rendered) + tail).encode()


@functools.lru_cache(maxsize=1 << 16)  # samples fall on whole minutes: a few thousand instants a cohort-day
def _utc(stamp: int) -> str:
    day, second = divmod(stamp, 86_400)
    return f"{_utc_date(day)}T{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}Z"


@functools.lru_cache(maxsize=4096)
def _utc_date(epoch_day: int) -> str:
    return (date(1970, 1, 1) + timedelta(days=epoch_day)).isoformat()


# --------------------------------------------------------------------------- sleep
@dataclass(frozen=True, slots=True)
class _Night:
    log_id: int
    start: float  # epoch seconds
    night: SleepNight
    stage_starts: tuple[float, ...]

    @property
    def end(self) -> float:
        return self.start + 60 * self.night.minutes_in_bed


def _synced_night(world: World, account: Account, day: date) -> _Night | None:
    """The main sleep ending on local ``day``, once the device has synced all of it."""
    if not world.first_day <= day <= world.last_day:
        return None
    night = world.cohort.sleep_night(account.participant_id, day)
    if night is None:
        return None
    zone = zoneinfo.ZoneInfo(account.timezone)
    start = (datetime.combine(day, datetime.min.time(), zone) + timedelta(minutes=night.start_minute)).timestamp()
    starts, elapsed = [], 0
    for _, minutes in night.stages:
        starts.append(start + 60 * elapsed)
        elapsed += minutes
    found = _Night(_log_id(account, day), start, night, tuple(starts))
    return found if found.end <= account.synced_until else None  # a log appears when the night is synced


def _log_id(account: Account, day: date) -> int:
    digest = hashlib.sha256(f"{account.participant_id}|{day.isoformat()}|sleep".encode()).digest()
    return int.from_bytes(digest[:5], "big")


def _local(stamp: float, zone: zoneinfo.ZoneInfo) -> str:
    return datetime.fromtimestamp(stamp, zone).strftime("%Y-%m-%dT%H:%M:%S.000")


def google_resting(world: World, account: Account) -> list[tuple[date, dict[str, Any]]]:
    """Every ``dailyRestingHeartRate`` point of the account: one per local day the device has
    synced any heart rate of (the value is the day's resting rate, as the Fitbit summary gives it;
    a day the tracker was not worn has none)."""
    points = []
    day = world.first_day
    while day <= world.last_day:
        visible = world.visible_minutes(account, day)
        if visible and any(rate is not None for rate in world.series(account.participant_id, day)[1][:visible]):
            points.append((day, {"dailyRestingHeartRate": {
                "date": {"year": day.year, "month": day.month, "day": day.day},
                "beatsPerMinute": str(world.cohort.resting_heart_rate(account.participant_id, day)),
                "dailyRestingHeartRateMetadata": {"calculationMethod": "WITH_SLEEP"}}}))
        day += timedelta(days=1)
    return points


def fitbit_sleep(world: World, account: Account, day: date) -> bytes:
    """``/1.2/user/-/sleep/date/{day}.json``: the stages log that ended that day (local times)."""
    found = _synced_night(world, account, day)
    if found is None:
        return orjson.dumps({"sleep": [], "summary": {"totalMinutesAsleep": 0, "totalSleepRecords": 0,
                                                      "totalTimeInBed": 0}})
    zone, night = zoneinfo.ZoneInfo(account.timezone), found.night
    by_level = night.minutes_by_level()
    counts = {level: sum(1 for lv, _ in night.stages if lv == level) for level in by_level}
    log = {
        "dateOfSleep": day.isoformat(), "duration": 60_000 * night.minutes_in_bed,
        "efficiency": round(100 * night.minutes_asleep / night.minutes_in_bed),
        "startTime": _local(found.start, zone), "endTime": _local(found.end, zone), "infoCode": 0,
        "isMainSleep": True, "logId": found.log_id, "logType": "auto_detected", "minutesAfterWakeup": 0,
        "minutesAsleep": night.minutes_asleep, "minutesAwake": night.minutes_in_bed - night.minutes_asleep,
        "minutesToFallAsleep": night.stages[0][1] if night.stages[0][0] == "wake" else 0,
        "timeInBed": night.minutes_in_bed, "type": "stages",
        "levels": {
            "data": [{"dateTime": _local(at, zone), "level": level, "seconds": 60 * minutes}
                     for at, (level, minutes) in zip(found.stage_starts, night.stages, strict=True)],
            "shortData": [],
            "summary": {level: {"count": counts[level], "minutes": minutes, "thirtyDayAvgMinutes": 0}
                        for level, minutes in by_level.items()},
        },
    }
    return orjson.dumps({"sleep": [log], "summary": {
        "stages": {level: by_level.get(level, 0) for level in ("deep", "light", "rem", "wake")},
        "totalMinutesAsleep": night.minutes_asleep, "totalSleepRecords": 1, "totalTimeInBed": night.minutes_in_bed}})


_GOOGLE_STAGE = {"wake": "AWAKE", "light": "LIGHT", "deep": "DEEP", "rem": "REM"}


@dataclass(frozen=True, slots=True)
class SleepSession:
    """A served sleep point and the times a filter can select it by."""

    start: float  # epoch seconds
    end: float
    civil_end: datetime  # the local (zone-less) end time
    point: dict[str, Any]


def google_sleep_sessions(world: World, account: Account) -> list[SleepSession]:
    """Every synced night of the account as a Google Health ``sleep`` point, oldest first."""
    zone, sessions = zoneinfo.ZoneInfo(account.timezone), []
    day = world.first_day
    while day <= world.last_day:
        found = _synced_night(world, account, day)
        if found is not None:
            civil_end = datetime.fromtimestamp(found.end, zone).replace(tzinfo=None)
            sessions.append(SleepSession(found.start, found.end, civil_end, _google_session(found, zone)))
        day += timedelta(days=1)
    return _kept(sessions, world.deleted(account.participant_id, "sleep"), lambda session: session.start)


def _kept(points: list[_Kept], withdrawn: list[tuple[float, float]], start_of: Callable[[_Kept], float]
          ) -> list[_Kept]:
    """The points whose start is in no withdrawn interval (``World.delete_samples``: the
    participant deleted them at the vendor; a DELETE notification told the subscriber)."""
    if not withdrawn:
        return points
    return [p for p in points if not any(a <= start_of(p) < b for a, b in withdrawn)]


def google_sleep(world: World, account: Account, first: date, end: date) -> list[dict[str, Any]]:
    """Google Health ``sleep`` points whose civil end date is in [first, end): one per night."""
    return [s.point for s in google_sleep_sessions(world, account) if first <= s.civil_end.date() < end]


def _google_session(found: _Night, zone: zoneinfo.ZoneInfo) -> dict[str, Any]:
    night = found.night

    def instant(stamp: float) -> dict[str, str]:
        offset = utc_offset_s(datetime.fromtimestamp(stamp, zone))
        return {"time": f"{datetime.fromtimestamp(stamp, UTC):%Y-%m-%dT%H:%M:%SZ}", "offset": f"{offset}s"}

    start, end = instant(found.start), instant(found.end)
    stages = []
    for at, (level, minutes) in zip(found.stage_starts, night.stages, strict=True):
        begin, finish = instant(at), instant(at + 60 * minutes)
        stages.append({"type": _GOOGLE_STAGE[level], "startTime": begin["time"], "endTime": finish["time"],
                       "startUtcOffset": begin["offset"], "endUtcOffset": finish["offset"]})
    return {"name": f"users/me/dataTypes/sleep/dataPoints/{found.log_id}", "sleep": {
        "type": "STAGES", "metadata": {"nap": False, "mainSleep": True},
        "interval": {"startTime": start["time"], "startUtcOffset": start["offset"],
                     "endTime": end["time"], "endUtcOffset": end["offset"]},
        "summary": {"minutesAsleep": str(night.minutes_asleep),
                    "minutesAwake": str(night.minutes_in_bed - night.minutes_asleep),
                    "minutesInSleepPeriod": str(night.minutes_in_bed),
                    "stagesSummary": [{"type": _GOOGLE_STAGE[level], "minutes": str(minutes)}
                                      for level, minutes in night.minutes_by_level().items()]},
        "stages": stages}}

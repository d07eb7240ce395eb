"""A sample page of every registered ``(provider, data_type)``, for the contract tests.

``SAMPLE_PAGES[(provider, data_type)]()`` returns a few well-formed pages of that format
(documented shapes: docs/vendors.md), each with accepted samples. Registering a normalizer
without adding its pages here fails ``test_contract.py``; with them, every contract test runs on it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import date
from typing import Any

import orjson

from models.providers import Provider
from models.raw import RawPage
from tests.builders import clock, fitbit_intraday_body, fitbit_page, google_page, minute_dataset

__all__ = ["SAMPLE_PAGES"]

FALL_BACK = date(2026, 11, 1)  # US DST ends: 01:xx is listed twice


def _heart_intraday() -> list[RawPage]:
    minutes = list(range(120)) + list(range(60, 1440))
    dataset = [{"time": clock(m), "value": 55 + i % 60} for i, m in enumerate(minutes)]
    daily = {"restingHeartRate": 61, "heartRateZones": [
        {"name": "Out of Range", "min": 30, "max": 90, "minutes": 1200, "caloriesOut": 1500.5},
        {"name": "Fat Burn", "min": 90, "max": 126, "minutes": 200, "caloriesOut": 700.25}]}
    seconds = [{"time": clock(8 * 60, s), "value": 70 + s % 9} for s in range(0, 60, 5)]
    return [
        fitbit_page("activities-heart-intraday", fitbit_intraday_body("heart", FALL_BACK, dataset, daily=daily),
                    day=FALL_BACK),
        fitbit_page("activities-heart-intraday",
                    fitbit_intraday_body("heart", date(2026, 4, 20), seconds, interval=1, dataset_type="second"),
                    day=date(2026, 4, 20), detail="1sec", timezone="Europe/Berlin"),
    ]


def _steps_intraday() -> list[RawPage]:
    day = date(2026, 3, 8)  # US DST starts: 02:xx does not exist
    dataset = [{"time": clock(m), "value": m % 40} for m in range(1440) if not 120 <= m < 180]
    return [
        fitbit_page("activities-steps-intraday", fitbit_intraday_body("steps", day, dataset, daily="26000"), day=day),
        fitbit_page("activities-steps-intraday", fitbit_intraday_body("steps", date(2026, 7, 1), minute_dataset(
            ["12", 0, 7, 1000]), daily="1019"), day=date(2026, 7, 1), timezone=None, utc_offset_ms=19_800_000),
    ]


def _activity_summary() -> list[RawPage]:
    body = orjson.dumps({"summary": {
        "steps": 9000, "caloriesOut": 2400, "caloriesBMR": 1600, "activityCalories": 800, "marginalCalories": 400,
        "sedentaryMinutes": 700, "lightlyActiveMinutes": 200, "fairlyActiveMinutes": 30, "veryActiveMinutes": 20,
        "restingHeartRate": 61, "floors": 4, "elevation": 12.2, "distances": [{"activity": "total", "distance": 6.2}],
        "heartRateZones": [{"name": "Fat Burn", "min": 86, "max": 120, "minutes": 55, "caloriesOut": 300.5}],
    }})
    return [fitbit_page("activities-summary", body, day=date(2026, 9, 9), detail=None)]


def _fitbit_sleep() -> list[RawPage]:
    stages = {
        "dateOfSleep": "2026-11-03", "startTime": "2026-11-02T23:30:00.000", "endTime": "2026-11-03T06:30:00.000",
        "isMainSleep": True, "logId": 123, "type": "stages", "minutesAsleep": 380, "minutesAwake": 40,
        "minutesAfterWakeup": 0, "minutesToFallAsleep": 5, "timeInBed": 420, "efficiency": 91,
        "levels": {
            "data": [{"dateTime": "2026-11-02T23:30:00.000", "level": "wake", "seconds": 600},
                     {"dateTime": "2026-11-02T23:40:00.000", "level": "light", "seconds": 3000},
                     {"dateTime": "2026-11-03T00:30:00.000", "level": "deep", "seconds": 21600}],
            "shortData": [{"dateTime": "2026-11-03T02:00:00.000", "level": "wake", "seconds": 60}],
            "summary": {"deep": {"count": 1, "minutes": 360}, "light": {"count": 1, "minutes": 50}},
        },
    }
    classic = {
        "dateOfSleep": "2026-06-10", "startTime": "2026-06-10T01:00:00.000", "isMainSleep": False, "logId": 9,
        "type": "classic", "minutesAsleep": 50, "timeInBed": 60,
        "levels": {"data": [{"dateTime": "2026-06-10T01:00:00.000", "level": "asleep", "seconds": 3000},
                            {"dateTime": "2026-06-10T01:50:00.000", "level": "restless", "seconds": 600}],
                   "summary": {"asleep": {"count": 1, "minutes": 50}, "restless": {"count": 1, "minutes": 10}}},
    }
    return [fitbit_page("sleep", orjson.dumps({"sleep": [stages]}), day=date(2026, 11, 3), detail=None),
            fitbit_page("sleep", orjson.dumps({"sleep": [classic]}), day=date(2026, 6, 10), detail=None,
                        timezone="Asia/Kolkata")]


def _devices() -> list[RawPage]:
    tracker = {"id": "816713257", "deviceVersion": "Charge 6", "battery": "High", "batteryLevel": 90,
               "lastSyncTime": "2026-11-20T08:15:00.000", "type": "TRACKER"}
    scale = {"id": "900000001", "deviceVersion": "Aria", "battery": "Low", "batteryLevel": 10,
             "lastSyncTime": "2026-11-19T23:59:59.000", "type": "SCALE"}
    return [fitbit_page("devices", orjson.dumps([tracker, scale]), detail=None),
            fitbit_page("devices", orjson.dumps({"devices": [tracker]}), detail=None, timezone="Australia/Sydney")]


def _google(data_type: str, points: list[Any], *, timezone: str | None = None) -> RawPage:
    return dataclasses.replace(google_page(data_type, points), timezone=timezone)


def _google_steps() -> list[RawPage]:
    def step(minute: int, count: str, length: int = 1) -> dict[str, Any]:
        start, end = 5 * 3600 + 60 * minute, 5 * 3600 + 60 * (minute + length)
        interval = {"startTime": f"2026-01-10T{clock(start // 60)}Z", "endTime": f"2026-01-10T{clock(end // 60)}Z",
                    "startUtcOffset": "-18000s", "endUtcOffset": "-18000s"}
        return {"name": "users/me/dataTypes/steps/dataPoints/x", "steps": {"count": count, "interval": interval}}

    return [_google("steps", [step(-1, "12"), step(0, "30"), step(1, "0")]),
            _google("steps", [step(60, "700", 15), step(75, "80", 5)])]


def _google_heart_rate() -> list[RawPage]:
    def hr(time: str, bpm: object, offset: str = "3600s") -> dict[str, Any]:
        return {"heartRate": {"beatsPerMinute": bpm, "sampleTime": {"physicalTime": time, "utcOffset": offset}}}

    return [_google("heart-rate", [hr("2026-03-01T10:00:00Z", "64"), hr("2026-03-01T10:00:05.250Z", "66"),
                                   hr("2026-03-01T23:30:00Z", "58")]),
            _google("heart-rate", [hr("2026-06-01T03:59:00Z", 70, "-14400s"),
                                   hr("2026-06-01T04:00:00Z", 71, "-14400s")])]


def _google_resting() -> list[RawPage]:
    points = [{"dailyRestingHeartRate": {"beatsPerMinute": "58", "date": {"year": 2026, "month": 2, "day": 3}}},
              {"dailyRestingHeartRate": {"beatsPerMinute": 57, "date": {"year": 2026, "month": 2, "day": 4}}}]
    return [_google("daily-resting-heart-rate", points, timezone="America/New_York"),
            _google("daily-resting-heart-rate", points[:1])]


def _google_sleep() -> list[RawPage]:
    session = {"sleep": {
        "type": "STAGES", "metadata": {"nap": False, "mainSleep": True},
        "interval": {"startTime": "2026-11-02T04:10:00Z", "startUtcOffset": "-18000s",
                     "endTime": "2026-11-02T11:30:00Z", "endUtcOffset": "-18000s"},
        "summary": {"minutesAsleep": "400", "minutesAwake": "40", "minutesInSleepPeriod": "440",
                    "stagesSummary": [{"type": "DEEP", "minutes": "70"}, {"type": "REM", "duration": "920.400s"}]},
        "stages": [{"type": "LIGHT", "startTime": "2026-11-02T04:10:00Z", "endTime": "2026-11-02T05:00:00Z",
                    "startUtcOffset": "-18000s"},
                   {"type": "REM", "startTime": "2026-11-02T05:00:00Z", "duration": "920.400s",
                    "startUtcOffset": "-18000s"},
                   {"type": "AWAKE", "startTime": "2026-11-02T05:15:20Z", "endTime": "2026-11-02T05:30:00Z",
                    "startUtcOffset": "-18000s"}],
    }}
    return [_google("sleep", [session])]


#: The sample pages of every registered format.
SAMPLE_PAGES: dict[tuple[Provider, str], Callable[[], list[RawPage]]] = {
    (Provider.FITBIT, "activities-heart-intraday"): _heart_intraday,
    (Provider.FITBIT, "activities-steps-intraday"): _steps_intraday,
    (Provider.FITBIT, "activities-summary"): _activity_summary,
    (Provider.FITBIT, "sleep"): _fitbit_sleep,
    (Provider.FITBIT, "devices"): _devices,
    (Provider.GOOGLE_HEALTH, "steps"): _google_steps,
    (Provider.GOOGLE_HEALTH, "heart-rate"): _google_heart_rate,
    (Provider.GOOGLE_HEALTH, "daily-resting-heart-rate"): _google_resting,
    (Provider.GOOGLE_HEALTH, "sleep"): _google_sleep,
}

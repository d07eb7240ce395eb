"""A sample page of every registered ``(provider, data_type)``, for the contract tests.

``SAMPLE_PAGES[(provider, data_type)]()`` returns a few well-formed pages of that format
(documented shapes: docs/vendors.md), each with accepted samples. Registering a normalizer
without adding its pages here fails ``test_contract.py``; with them, every contract test runs on it.

The Google Health pages hold every documented shape of a v4 response: civil times beside the
physical times and offsets, offsets left out (UTC), int64 values as strings and as numbers,
RFC 3339 times with no, one and nine fractional digits, points newest first (the API's order),
page tokens, resting heart rate with its metadata, sleep with and without ``metadata.mainSleep``
(naps, a session still being processed, a classic session), paired devices without a name or a
battery level. The Fitbit pages include a whole daily activity summary response and a page
whose ``dateTime`` is ``"today"``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import orjson

from models.providers import Provider
from models.raw import RawPage
from tests.builders import clock, fitbit_intraday_body, fitbit_page, google_page, minute_dataset

__all__ = ["EMPTY_GOOGLE_BODIES", "SAMPLE_PAGES"]

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
    # Fetched as ``.../date/today/1d/1min.json`` (as some exports hold pages): the body says "today".
    today = orjson.loads(fitbit_intraday_body("steps", date(2026, 7, 2), minute_dataset([3, 4]), daily="7"))
    today["activities-steps"][0]["dateTime"] = "today"
    return [
        fitbit_page("activities-steps-intraday", fitbit_intraday_body("steps", day, dataset, daily="26000"), day=day),
        fitbit_page("activities-steps-intraday", fitbit_intraday_body("steps", date(2026, 7, 1), minute_dataset(
            ["12", 0, 7, 1000]), daily="1019"), day=date(2026, 7, 1), timezone=None, utc_offset_ms=19_800_000),
        fitbit_page("activities-steps-intraday", orjson.dumps(today), day=date(2026, 7, 2)),
    ]


def _activity_summary() -> list[RawPage]:
    body = orjson.dumps({"summary": {
        "steps": 9000, "caloriesOut": 2400, "caloriesBMR": 1600, "activityCalories": 800, "marginalCalories": 400,
        "sedentaryMinutes": 700, "lightlyActiveMinutes": 200, "fairlyActiveMinutes": 30, "veryActiveMinutes": 20,
        "restingHeartRate": 61, "floors": 4, "elevation": 12.2, "distances": [{"activity": "total", "distance": 6.2}],
        "heartRateZones": [{"name": "Fat Burn", "min": 86, "max": 120, "minutes": 55, "caloriesOut": 300.5}],
    }})
    # The whole ``GET /1/user/-/activities/date/{day}.json`` response: logged activities, goals, summary.
    full = orjson.dumps({
        "activities": [],
        "goals": {"activeMinutes": 30, "caloriesOut": 2500, "distance": 8.05, "floors": 10, "steps": 10000},
        "summary": {
            "activeScore": -1, "activityCalories": 525, "caloriesBMR": 1668, "caloriesOut": 2076, "elevation": 3.05,
            "fairlyActiveMinutes": 6, "floors": 1, "lightlyActiveMinutes": 88, "marginalCalories": 290,
            "restingHeartRate": 64, "sedentaryMinutes": 1222, "steps": 1234, "veryActiveMinutes": 0,
            "distances": [{"activity": "total", "distance": 0.87}, {"activity": "tracker", "distance": 0.87},
                          {"activity": "loggedActivities", "distance": 0},
                          {"activity": "veryActive", "distance": 0}, {"activity": "lightlyActive", "distance": 0.61}],
            "heartRateZones": [
                {"caloriesOut": 1752.9, "max": 96, "min": 30, "minutes": 1355, "name": "Out of Range"},
                {"caloriesOut": 296.3, "max": 134, "min": 96, "minutes": 65, "name": "Fat Burn"},
                {"caloriesOut": 0, "max": 163, "min": 134, "minutes": 0, "name": "Cardio"},
                {"caloriesOut": 0, "max": 220, "min": 163, "minutes": 0, "name": "Peak"}],
        },
    })
    return [fitbit_page("activities-summary", body, day=date(2026, 9, 9), detail=None),
            fitbit_page("activities-summary", full, day=date(2026, 10, 5), detail=None, timezone="Europe/Paris")]


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
    # No batteryLevel, and the same second as the tracker: a device all the same, its own sample.
    silent = {"id": "900000002", "deviceVersion": "Aria Air", "battery": "Empty", "features": [], "mac": "AB12",
              "lastSyncTime": "2026-11-20T08:15:00.000", "type": "SCALE"}
    return [fitbit_page("devices", orjson.dumps([tracker, scale, silent]), detail=None),
            fitbit_page("devices", orjson.dumps({"devices": [tracker]}), detail=None, timezone="Australia/Sydney")]


def _google(data_type: str, points: list[Any], *, timezone: str | None = None, token: str | None = None) -> RawPage:
    return dataclasses.replace(google_page(data_type, points, token=token), timezone=timezone)


def _civil(moment: datetime, offset_s: int) -> dict[str, Any]:
    """A v4 civil time (output only): the local date and time of ``moment`` (UTC) at ``offset_s``,
    zero fields left out as proto3 JSON does."""
    local = moment + timedelta(seconds=offset_s)
    time = {"hours": local.hour, "minutes": local.minute, "seconds": local.second,
            "nanos": local.microsecond * 1000}
    return {"date": {"year": local.year, "month": local.month, "day": local.day},
            "time": {k: v for k, v in time.items() if v}}


def _rfc3339(moment: datetime, fraction: str = "") -> str:
    return f"{moment:%Y-%m-%dT%H:%M:%S}{fraction}Z"


def _duration(offset_s: int) -> str | None:
    return None if offset_s == 0 else f"{offset_s}s"  # proto3 JSON omits a zero Duration


def _google_steps() -> list[RawPage]:
    def step(minute: int, count: str, length: int = 1) -> dict[str, Any]:
        start, end = 5 * 3600 + 60 * minute, 5 * 3600 + 60 * (minute + length)
        interval = {"startTime": f"2026-01-10T{clock(start // 60)}Z", "endTime": f"2026-01-10T{clock(end // 60)}Z",
                    "startUtcOffset": "-18000s", "endUtcOffset": "-18000s"}
        return {"name": "users/me/dataTypes/steps/dataPoints/x", "steps": {"count": count, "interval": interval}}

    def full(start: datetime, count: object, offset_s: int, fraction: str = "") -> dict[str, Any]:
        """Every documented field: civil times beside the physical ones, provenance, int64 as a string."""
        end = start + timedelta(minutes=1)
        interval: dict[str, Any] = {"startTime": _rfc3339(start, fraction), "endTime": _rfc3339(end, fraction),
                                    "civilStartTime": _civil(start, offset_s), "civilEndTime": _civil(end, offset_s)}
        if (offset := _duration(offset_s)) is not None:
            interval |= {"startUtcOffset": offset, "endUtcOffset": offset}
        return {"name": f"users/me/dataTypes/steps/dataPoints/{start:%H%M}",
                "dataSource": {"platform": "FITBIT", "recordingMethod": "PASSIVELY_MEASURED",
                               "device": {"displayName": "Charge 6", "formFactor": "FITNESS_BAND",
                                          "manufacturer": "Google"}},
                "steps": {"count": count, "interval": interval}}

    # Newest first, as the list is ordered; a participant in UTC (no offsets at all); mixed fractions.
    at = datetime(2026, 10, 1, 3, 58)
    newest_first = [full(at + timedelta(minutes=m), str(m * 10), -14400, fraction)
                    for m, fraction in ((3, ".123456789"), (2, ".5"), (1, ""), (0, ".000"))]
    in_utc = [full(datetime(2026, 10, 1, 0, m), count, 0) for m, count in ((2, "9"), (1, 8), (0, "7"))]
    return [_google("steps", [step(-1, "12"), step(0, "30"), step(1, "0")]),
            _google("steps", [step(60, "700", 15), step(75, "80", 5)]),
            _google("steps", newest_first, token="next"), _google("steps", in_utc)]


def _google_heart_rate() -> list[RawPage]:
    def hr(time: str, bpm: object, offset: str = "3600s") -> dict[str, Any]:
        return {"heartRate": {"beatsPerMinute": bpm, "sampleTime": {"physicalTime": time, "utcOffset": offset}}}

    def full(moment: datetime, fraction: str, bpm: object, offset_s: int) -> dict[str, Any]:
        sample: dict[str, Any] = {"physicalTime": _rfc3339(moment, fraction), "civilTime": _civil(moment, offset_s)}
        if (offset := _duration(offset_s)) is not None:
            sample["utcOffset"] = offset
        return {"dataSource": {"platform": "FITBIT", "recordingMethod": "PASSIVELY_MEASURED"},
                "heartRate": {"beatsPerMinute": bpm, "sampleTime": sample,
                              "metadata": {"motionContext": "SEDENTARY", "sensorLocation": "WRIST"}}}

    at = datetime(2026, 10, 1, 3, 59, 58)  # local midnight at -04:00 is 04:00 UTC: two dates, newest first
    points = [full(at + timedelta(seconds=s), fraction, str(60 + s), -14400)
              for s, fraction in ((4, ".123456789"), (3, ""), (2, ".5"), (1, ".25"), (0, ""))]
    return [_google("heart-rate", [hr("2026-03-01T10:00:00Z", "64"), hr("2026-03-01T10:00:05.250Z", "66"),
                                   hr("2026-03-01T23:30:00Z", "58")]),
            _google("heart-rate", [hr("2026-06-01T03:59:00Z", 70, "-14400s"),
                                   hr("2026-06-01T04:00:00Z", 71, "-14400s")]),
            _google("heart-rate", points, token="next"),
            _google("heart-rate", [full(datetime(2026, 10, 1, 12), "", 66, 0)], timezone="UTC")]


def _google_resting() -> list[RawPage]:
    points = [{"dailyRestingHeartRate": {"beatsPerMinute": "58", "date": {"year": 2026, "month": 2, "day": 3}}},
              {"dailyRestingHeartRate": {"beatsPerMinute": 57, "date": {"year": 2026, "month": 2, "day": 4}}}]
    newest_first = [{"dataSource": {"platform": "FITBIT", "recordingMethod": "DERIVED"}, "dailyRestingHeartRate": {
        "date": {"year": 2026, "month": 10, "day": day}, "beatsPerMinute": str(bpm),
        "dailyRestingHeartRateMetadata": {"calculationMethod": method}}}
        for day, bpm, method in ((3, 61, "WITH_SLEEP"), (2, 63, "ONLY_WITH_AWAKE_DATA"), (1, 62, "WITH_SLEEP"))]
    return [_google("daily-resting-heart-rate", points, timezone="America/New_York"),
            _google("daily-resting-heart-rate", points[:1]),
            _google("daily-resting-heart-rate", newest_first, timezone="Asia/Kolkata", token="next")]


def _google_session(start: datetime, minutes: int, stages: list[tuple[str, int]], *, offset_s: int = -18000,
                    kind: str = "STAGES", metadata: dict[str, Any] | None = None, point_id: str = "1",
                    stated: bool = True) -> dict[str, Any]:
    """A v4 sleep data point: ``stages`` are (type, minutes) in order from ``start`` (UTC);
    ``stated``: the summary states ``minutesInSleepPeriod``."""
    end = start + timedelta(minutes=minutes)
    offset = _duration(offset_s)
    interval: dict[str, Any] = {"startTime": _rfc3339(start), "endTime": _rfc3339(end),
                                "civilStartTime": _civil(start, offset_s), "civilEndTime": _civil(end, offset_s)}
    if offset is not None:
        interval |= {"startUtcOffset": offset, "endUtcOffset": offset}
    listed, at = [], start
    for stage_type, length in stages:
        stage: dict[str, Any] = {"type": stage_type, "startTime": _rfc3339(at),
                                 "endTime": _rfc3339(at + timedelta(minutes=length)),
                                 "createTime": "2026-11-02T12:00:00.123Z", "updateTime": "2026-11-02T12:00:00.123Z"}
        if offset is not None:
            stage |= {"startUtcOffset": offset, "endUtcOffset": offset}
        listed.append(stage)
        at += timedelta(minutes=length)
    by_type: dict[str, int] = {}
    for stage_type, length in stages:
        by_type[stage_type] = by_type.get(stage_type, 0) + length
    awake = sum(length for stage_type, length in stages if stage_type == "AWAKE")
    summary: dict[str, Any] = {
        "minutesAsleep": str(minutes - awake), "minutesAwake": str(awake), "minutesToFallAsleep": "0",
        "minutesAfterWakeUp": "0", "stagesSummary": [{"type": t, "minutes": str(m), "count": "1"}
                                                      for t, m in by_type.items()]}
    if stated:
        summary["minutesInSleepPeriod"] = str(minutes)
    return {"name": f"users/me/dataTypes/sleep/dataPoints/{point_id}", "sleep": {
        "type": kind, "interval": interval, "stages": listed, "summary": summary,
        "metadata": metadata if metadata is not None else {"stagesStatus": "SUCCEEDED", "manuallyEdited": False},
        "shortAwakenings": [], "outOfBedSegments": [],
        "createTime": "2026-11-02T12:00:00Z", "updateTime": "2026-11-02T12:00:00Z"}}


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
    # The current reference: no ``mainSleep``. One day's sessions, newest first: a nap, the night
    # (still being processed), a morning doze that is not a nap; and a classic session on a page of
    # its own. Local time is UTC-5: all three end on 3 November.
    day = [_google_session(datetime(2026, 11, 3, 19), 40, [("LIGHT", 30), ("AWAKE", 10)], point_id="nap",
                           metadata={"nap": True}),
           _google_session(datetime(2026, 11, 3, 13), 90, [("LIGHT", 60), ("AWAKE", 30)], point_id="doze",
                           stated=False),
           _google_session(datetime(2026, 11, 3, 4), 420, [("AWAKE", 10), ("LIGHT", 200), ("DEEP", 90),
                                                           ("REM", 100), ("AWAKE", 20)], point_id="night",
                           metadata={"nap": False, "processed": False, "stagesStatus": "SUCCEEDED"})]
    classic = _google_session(datetime(2026, 6, 10), 60, [("ASLEEP", 50), ("RESTLESS", 5), ("AWAKE", 5)],
                              offset_s=0, kind="CLASSIC", point_id="classic")
    return [_google("sleep", [session]), _google("sleep", day, timezone="America/New_York"),
            _google("sleep", [classic], token="next")]


def _google_paired_devices() -> list[RawPage]:
    watch = {"name": "users/me/pairedDevices/a1b2", "batteryLevel": 80, "batteryStatus": "BATTERY_STATUS_OK",
             "deviceType": "WATCH", "deviceVersion": "Pixel Watch 3", "lastSyncTime": "2026-10-01T03:59:30.5Z",
             "features": ["HEART_RATE", "SLEEP"]}
    # No name, no battery level, and the watch's second: still a device, and a sample of its own.
    tracker = {"batteryStatus": "BATTERY_STATUS_LOW", "deviceType": "TRACKER", "deviceVersion": "Charge 6",
               "lastSyncTime": "2026-10-01T03:59:30Z", "features": []}
    scale = {"batteryLevel": 5, "deviceType": "SCALE", "deviceVersion": "Aria Air",
             "lastSyncTime": "2026-09-28T12:00:00.123456789Z"}

    def page(body: dict[str, Any], timezone: str | None) -> RawPage:
        return RawPage(provider=Provider.GOOGLE_HEALTH, data_type="paired-devices", date=None,
                       body=orjson.dumps(body), timezone=timezone, fetched_at=1.0, request_id="t")

    return [page({"pairedDevices": [watch, tracker, scale], "nextPageToken": "next"}, "America/New_York"),
            page({"devices": [watch]}, None)]


def _google_deletions() -> list[RawPage]:
    """DELETE notifications as the gateway publishes them: physical and civil, or civil only."""
    def page(body: dict[str, Any]) -> RawPage:
        return RawPage(provider=Provider.GOOGLE_HEALTH, data_type="deletions", date=None, body=orjson.dumps(body),
                       origin="webhook", fetched_at=1.0, request_id="t")

    return [page({"operation": "DELETE", "dataType": "heart-rate", "intervals": [{
                 "physicalTimeInterval": {"startTime": "2026-10-01T10:00:00Z", "endTime": "2026-10-01T11:00:00.5Z"},
                 "civilIso8601TimeInterval": {"startTime": "2026-10-01T06:00:00", "endTime": "2026-10-01T07:00:00"}}]}),
            page({"operation": "DELETE", "dataType": "sleep", "intervals": [{
                 "civilIso8601TimeInterval": {"startTime": "2026-09-30T23:00:00", "endTime": "2026-10-01T07:00:00"}}]})]


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
    (Provider.GOOGLE_HEALTH, "paired-devices"): _google_paired_devices,
    (Provider.GOOGLE_HEALTH, "deletions"): _google_deletions,
}

#: Pages of each Google data type with no data points: empty, or only a page token (the API
#: sends such pages mid-list). They give no batches, no rejects and no error.
EMPTY_GOOGLE_BODIES = (b"{}", b'{"nextPageToken": "x"}', b'{"dataPoints": [], "nextPageToken": "x"}',
                       b'{"pairedDevices": [], "nextPageToken": "x"}')

"""Fitbit sleep v1.2 pages (streams/normalize/fitbit/sleep.py): stage segments filed under the end
date, short wakes, classic logs, the log's own figures."""

from __future__ import annotations

from datetime import UTC, date, datetime

import orjson

from models.errors import Reason
from models.samples import Metric
from streams.normalize import normalize
from tests.builders import SECRET, fitbit_page

RID = "R0123456789abcdef0123"


def _utc(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def test_sleep_log_crossing_midnight_is_filed_under_its_end_date() -> None:
    body = orjson.dumps({"sleep": [{
        "dateOfSleep": "2026-11-03", "startTime": "2026-11-02T23:30:00.000", "endTime": "2026-11-03T06:30:00.000",
        "isMainSleep": True, "logId": 123, "type": "stages", "minutesAsleep": 380, "minutesAwake": 40,
        "timeInBed": 420, "efficiency": 91,
        "levels": {
            "data": [{"dateTime": "2026-11-02T23:30:00.000", "level": "wake", "seconds": 600},
                     {"dateTime": "2026-11-02T23:40:00.000", "level": "light", "seconds": 3000},
                     {"dateTime": "2026-11-03T00:30:00.000", "level": "deep", "seconds": 21600}],
            "shortData": [{"dateTime": "2026-11-03T02:00:00.000", "level": "wake", "seconds": 60}],
            "summary": {"deep": {"count": 1, "minutes": 360}, "light": {"count": 1, "minutes": 50}},
        },
    }]})
    result = normalize(fitbit_page("sleep", body, day=date(2026, 11, 3), detail=None), RID, secret=SECRET)
    stages = [b for b in result.batches if b.metric is Metric.SLEEP_STAGE]
    assert len(stages) == 1
    stage = stages[0]
    assert stage.local_date == "2026-11-03"
    assert stage.labels == ["wake", "light", "deep", "short:wake"]
    assert stage.durations == [600, 3000, 21600, 60]
    assert stage.timestamps[0] == _utc("2026-11-03T04:30:00")  # 23:30 EST on the 2nd
    assert stage.attributes["is_main_sleep"] is True
    summary = next(b for b in result.batches if b.metric is Metric.VENDOR_SLEEP)
    assert dict(zip(summary.labels or [], summary.values, strict=True))["minutes_asleep"] == 380.0
    assert summary.local_date == "2026-11-03"


def test_classic_sleep_log_levels() -> None:
    body = orjson.dumps({"sleep": [{
        "dateOfSleep": "2026-06-10", "startTime": "2026-06-10T01:00:00.000", "isMainSleep": False, "logId": 9,
        "type": "classic", "minutesAsleep": 50, "timeInBed": 60,
        "levels": {"data": [{"dateTime": "2026-06-10T01:00:00.000", "level": "asleep", "seconds": 3000},
                            {"dateTime": "2026-06-10T01:50:00.000", "level": "restless", "seconds": 600}],
                   "summary": {"asleep": {"count": 1, "minutes": 50}, "restless": {"count": 1, "minutes": 10}}},
    }]})
    result = normalize(fitbit_page("sleep", body, day=date(2026, 6, 10), detail=None), RID, secret=SECRET)
    stage = next(b for b in result.batches if b.metric is Metric.SLEEP_STAGE)
    assert stage.labels == ["asleep", "restless"] and stage.attributes["type"] == "classic"
    assert stage.attributes["is_main_sleep"] is False
    assert stage.timestamps == [_utc("2026-06-10T05:00:00"), _utc("2026-06-10T05:50:00")]


def test_times_that_are_not_strings_are_bad_times_not_a_crash() -> None:
    body = orjson.dumps({"sleep": [{
        "dateOfSleep": "2026-06-10", "startTime": 1781053200, "isMainSleep": True, "logId": 9, "minutesAsleep": 50,
        "levels": {"data": [{"dateTime": 1781053200, "level": "asleep", "seconds": 3000}]},
    }]})
    result = normalize(fitbit_page("sleep", body, day=date(2026, 6, 10), detail=None), RID, secret=SECRET)
    assert [(r.reason, r.count) for r in result.rejects] == [(Reason.BAD_TIME, 1), (Reason.BAD_TIME, 1)]
    assert result.samples == 0 and result.input_samples == 2


def test_a_segment_without_a_level_is_unknown() -> None:
    body = orjson.dumps({"sleep": [{
        "dateOfSleep": "2026-06-10", "startTime": "2026-06-10T01:00:00.000", "isMainSleep": True, "logId": 9,
        "levels": {"data": [{"dateTime": "2026-06-10T01:00:00.000", "seconds": 600}],
                   "shortData": [{"dateTime": "2026-06-10T01:05:00.000", "level": None, "seconds": 30}]},
    }]})
    result = normalize(fitbit_page("sleep", body, day=date(2026, 6, 10), detail=None), RID, secret=SECRET)
    stage = next(b for b in result.batches if b.metric is Metric.SLEEP_STAGE)
    assert stage.labels == ["unknown", "short:unknown"]  # a level All of Us allows, never "None"

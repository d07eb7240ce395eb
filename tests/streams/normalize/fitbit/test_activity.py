"""Fitbit daily activity summary pages (streams/normalize/fitbit/activity.py): figures and
heart-rate zones at local midnight."""

from __future__ import annotations

from datetime import UTC, date, datetime

import orjson

from streams.normalize import normalize
from tests.builders import SECRET, fitbit_page

RID = "R0123456789abcdef0123"


def _utc(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def test_activity_summary_and_heart_rate_zones() -> None:
    body = orjson.dumps({"summary": {
        "steps": 9000, "caloriesOut": 2400, "sedentaryMinutes": 700, "restingHeartRate": 61, "floors": 4,
        "distances": [{"activity": "total", "distance": 6.2}],
        "heartRateZones": [{"name": "Fat Burn", "min": 86, "max": 120, "minutes": 55, "caloriesOut": 300.5}],
    }})
    result = normalize(fitbit_page("activities-summary", body, day=date(2026, 9, 9), detail=None), RID, secret=SECRET)
    batch = result.batches[0]
    figures = dict(zip(batch.labels or [], batch.values, strict=True))
    assert figures["steps"] == 9000 and figures["resting_heart_rate"] == 61 and figures["distance"] == 6.2
    assert figures["hr_zone.Fat Burn.minutes"] == 55 and figures["hr_zone.Fat Burn.calories_out"] == 300.5
    assert set(batch.timestamps) == {_utc("2026-09-09T04:00:00")}  # every figure at local midnight

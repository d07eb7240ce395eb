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


def test_the_whole_daily_activity_response_is_filed_under_the_pages_date() -> None:
    """``GET /1/user/-/activities/date/{day}.json``: logged activities and goals beside the summary.

    The body has no date of its own, so a page fetched as ``.../date/today.json`` is filed under
    the page's date (the request's, or the archive file's) like any other.
    """
    body = orjson.dumps({
        "activities": [], "goals": {"activeMinutes": 30, "caloriesOut": 2500, "distance": 8.05, "steps": 10000},
        "summary": {"activeScore": -1, "steps": 1234, "caloriesOut": 2076, "restingHeartRate": 64,
                    "distances": [{"activity": "tracker", "distance": 0.9}, {"activity": "total", "distance": 0.87}],
                    "heartRateZones": [{"name": "Peak", "min": 163, "max": 220, "minutes": 0, "caloriesOut": 0}]},
    })
    page = fitbit_page("activities-summary", body, day=date(2026, 10, 5), detail=None)
    batch, = normalize(page, RID, secret=SECRET).batches
    figures = dict(zip(batch.labels or [], batch.values, strict=True))
    assert (batch.local_date, batch.timestamps[0]) == ("2026-10-05", _utc("2026-10-05T04:00:00"))
    assert figures == {"steps": 1234, "calories_out": 2076, "resting_heart_rate": 64, "distance": 0.87,
                       "hr_zone.Peak.minutes": 0, "hr_zone.Peak.min": 163, "hr_zone.Peak.max": 220,
                       "hr_zone.Peak.calories_out": 0}

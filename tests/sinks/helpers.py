"""A small cohort's ``daily`` and ``intraday`` records, with sleep logs and activity summaries
besides the intraday pages, as the daily agent emits them."""

from __future__ import annotations

from datetime import date, timedelta

import orjson

from connectors.simulator.cohort import SyntheticCohort
from models.daily import DailySummary
from models.raw import RawPage
from models.samples import SampleBatch
from tests.builders import fitbit_page
from tests.streams.daily.helpers import Store, batches_of, cohort_pages

FIRST = date(2026, 11, 1)  # 1 November 2026 is a DST day in the US zones: a 25-hour local day


def sleep_body(day: date, *, main: bool, log_id: int, minutes: int) -> bytes:
    """A stages log ending on ``day``: the main sleep from 23:30 the evening before, a nap from 13:00."""
    start = f"{(day - timedelta(days=1)).isoformat()}T23:30:00.000" if main else f"{day.isoformat()}T13:00:00.000"
    second = f"{(day - timedelta(days=1)).isoformat()}T23:50:00.000" if main else f"{day.isoformat()}T13:20:00.000"
    return orjson.dumps({"sleep": [{
        "dateOfSleep": day.isoformat(), "startTime": start, "isMainSleep": main, "logId": log_id, "type": "stages",
        "minutesAsleep": minutes - 20, "minutesAfterWakeup": 3, "timeInBed": minutes, "efficiency": 93,
        "levels": {
            "data": [{"dateTime": start, "level": "wake", "seconds": 1200},
                     {"dateTime": second, "level": "deep", "seconds": (minutes - 20) * 60}],
            "shortData": [{"dateTime": f"{day.isoformat()}T01:00:00.000", "level": "wake", "seconds": 60}],
            "summary": {"deep": {"count": 1, "minutes": minutes - 20}, "wake": {"count": 1, "minutes": 20},
                        "light": {"count": 0, "minutes": 0}, "rem": {"count": 0, "minutes": 0}},
        },
    }]})


def activity_body(steps: int) -> bytes:
    return orjson.dumps({"summary": {
        "steps": steps, "caloriesOut": 2400.5, "caloriesBMR": 1600, "activityCalories": 800, "marginalCalories": 400,
        "sedentaryMinutes": 700, "lightlyActiveMinutes": 200, "fairlyActiveMinutes": 30, "veryActiveMinutes": 20,
        "floors": 4, "elevation": 12.19, "restingHeartRate": 61,
        "heartRateZones": [{"name": name, "min": low, "max": high, "minutes": minutes, "caloriesOut": kcal}
                           for name, low, high, minutes, kcal in (("Out of Range", 30, 91, 1200, 1500.25),
                                                                  ("Fat Burn", 91, 127, 60, 400.5),
                                                                  ("Cardio", 127, 154, 10, 90.0),
                                                                  ("Peak", 154, 220, 0, 0.0))],
    }})


def cohort_records(participants: int = 4, days: int = 2,
                   seed: int = 3) -> tuple[list[DailySummary], list[SampleBatch], str]:
    """(daily records, intraday records, the research_id with extras) of a cohort: that
    participant also has vendor activity summaries on even days and a main sleep plus a nap
    every day."""
    cohort = SyntheticCohort(participants, seed=seed)
    dates = [FIRST + timedelta(days=d) for d in range(days)]
    pages: list[tuple[str, RawPage]] = cohort_pages(cohort, dates)
    rid = pages[0][0]
    for n, day in enumerate(dates):
        pages.append((rid, fitbit_page("sleep", sleep_body(day, main=True, log_id=100 + n, minutes=420), day=day,
                                       detail=None)))
        pages.append((rid, fitbit_page("sleep", sleep_body(day, main=False, log_id=200 + n, minutes=60), day=day,
                                       detail=None)))
        if n % 2 == 0:
            pages.append((rid, fitbit_page("activities-summary", activity_body(9000 + n), day=day, detail=None)))
    store = Store()
    store.apply(batches_of(pages), watermark=0)
    return list(store.daily.values()), store.intraday, rid

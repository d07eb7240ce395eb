"""The simulator's pages: nights served in both vendors' shapes, which our normalizers and daily
aggregate turn back into exactly the simulated minutes (the nights themselves: test_cohort.py);
Fitbit's daily activity summary and Google's daily resting heart rate, consistent with the
minutes the device has synced."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import orjson
import pytest

from connectors.simulator.cohort import SyntheticCohort
from connectors.simulator.pages import (
    fitbit_activity_summary,
    fitbit_sleep,
    google_page,
    google_resting,
    google_sleep,
    google_sleep_sessions,
)
from connectors.simulator.world import World
from models.providers import Provider
from models.raw import RawPage
from tests.streams.daily.helpers import Store, batches_of

# 2026-11-01: US daylight saving time ends at 02:00, inside the night that ends that morning
FIRST, LAST = date(2026, 10, 28), date(2026, 11, 3)


def _world(participants: int) -> World:
    world = World(SyntheticCohort(participants, seed=11), days=1, late_share=0.0)
    world.first_day, world.last_day = FIRST, LAST
    world.data_end = datetime.combine(LAST + timedelta(days=2), datetime.min.time(), UTC).timestamp()
    return world


def _days() -> list[date]:
    return [FIRST + timedelta(days=i) for i in range((LAST - FIRST).days + 1)]


@pytest.mark.parametrize("provider", [Provider.FITBIT, Provider.GOOGLE_HEALTH])
def test_served_nights_normalize_and_summarize_to_the_simulated_minutes(provider: Provider) -> None:
    world = _world(12)
    pages, truth = [], {}
    for person in world.cohort.participant_ids:
        account = world.account(provider, person)
        rid = f"R{person[1:]}"
        for day in _days():
            if provider is Provider.FITBIT:
                body = fitbit_sleep(world, account, day)
            else:
                body = orjson.dumps({"dataPoints": google_sleep(world, account, day, day + timedelta(days=1))})
            pages.append((rid, RawPage(provider=provider, data_type="sleep", date=day.isoformat(), body=body,
                                       timezone=account.timezone)))
            night = world.cohort.sleep_night(person, day)
            if night is not None:
                # both vendors' stages arrive under Fitbit's level names (Google's AWAKE is "wake")
                truth[f"{rid}|{day.isoformat()}"] = (night.minutes_asleep, night.minutes_in_bed,
                                                     night.minutes_by_level())
    store = Store()
    store.apply(batches_of(pages), watermark=int(world.data_end))
    got = {key: (s.sleep_minutes_asleep, s.sleep_minutes_in_bed, s.sleep_stage_minutes)
           for key, s in store.daily.items()}
    assert store.letters == []
    assert got == truth
    assert any(world.cohort.timezone(p) != "Pacific/Honolulu" for p in world.cohort.participant_ids)


def test_a_night_appears_only_once_the_device_has_synced_its_end() -> None:
    world = _world(3)
    person = next(p for p in world.cohort.participant_ids if world.cohort.sleep_night(p, LAST) is not None)
    account = world.account(Provider.FITBIT, person)
    account.synced_until = datetime.combine(LAST, datetime.min.time(), UTC).timestamp()  # before that morning
    assert orjson.loads(fitbit_sleep(world, account, LAST))["sleep"] == []
    assert google_sleep(world, account, LAST, LAST + timedelta(days=1)) == []
    account.synced_until = world.data_end
    log = orjson.loads(fitbit_sleep(world, account, LAST))["sleep"][0]
    assert log["dateOfSleep"] == LAST.isoformat() and log["type"] == "stages" and log["isMainSleep"] is True
    assert sum(item["seconds"] for item in log["levels"]["data"]) == 60 * log["timeInBed"]
    assert orjson.loads(fitbit_sleep(world, account, LAST + timedelta(days=1)))["sleep"] == []  # beyond the data


def test_the_activity_summary_adds_up_the_synced_minutes() -> None:
    world = _world(4)
    person = world.cohort.participant_ids[0]
    account = world.account(Provider.FITBIT, person)
    steps, rates = world.series(person, LAST)
    whole = orjson.loads(fitbit_activity_summary(world, account, LAST))
    summary = whole["summary"]
    assert set(whole) == {"activities", "goals", "summary"} and whole["activities"] == []
    assert summary["steps"] == sum(steps) > 0
    assert (summary["sedentaryMinutes"] + summary["lightlyActiveMinutes"] + summary["fairlyActiveMinutes"]
            + summary["veryActiveMinutes"]) == 1440
    assert summary["veryActiveMinutes"] == sum(1 for s in steps if s >= 100)
    assert summary["caloriesOut"] == summary["caloriesBMR"] + summary["activityCalories"]
    assert summary["caloriesBMR"] == world.cohort.basal_calories(person)  # a whole day synced
    assert [d["distance"] for d in summary["distances"] if d["activity"] == "total"] == [round(sum(steps) * 0.00075, 2)]
    zones = summary["heartRateZones"]
    assert [z["name"] for z in zones] == ["Out of Range", "Fat Burn", "Cardio", "Peak"]
    assert sum(z["minutes"] for z in zones) == sum(1 for r in rates if r is not None)
    assert summary["restingHeartRate"] == world.cohort.resting_heart_rate(person, LAST)

    noon = world.midnight(account, LAST) + 12 * 3600
    account.synced_until = noon  # half the day has reached the servers
    half = orjson.loads(fitbit_activity_summary(world, account, LAST))["summary"]
    assert half["steps"] == sum(steps[:720]) and half["caloriesBMR"] == round(world.cohort.basal_calories(person) / 2)
    account.synced_until = world.midnight(account, LAST)
    nothing = orjson.loads(fitbit_activity_summary(world, account, LAST))["summary"]
    assert nothing["steps"] == 0 and "restingHeartRate" not in nothing  # no heart rate, no resting rate


def test_google_resting_rates_one_a_synced_day_and_sleep_sessions_by_their_local_end() -> None:
    world = _world(3)
    person = world.cohort.participant_ids[1]
    account = world.account(Provider.GOOGLE_HEALTH, person)
    resting = google_resting(world, account)
    assert [day for day, _ in resting] == _days()
    day, point = resting[-1]
    assert point["dailyRestingHeartRate"]["date"] == {"year": day.year, "month": day.month, "day": day.day}
    assert point["dailyRestingHeartRate"]["beatsPerMinute"] == str(world.cohort.resting_heart_rate(person, day))
    account.synced_until = world.midnight(account, LAST)
    assert [d for d, _ in google_resting(world, account)] == _days()[:-1]  # the last day not synced yet
    account.synced_until = world.data_end
    sessions = google_sleep_sessions(world, account)
    nights = [d for d in _days() if world.cohort.sleep_night(person, d) is not None]
    assert [s.civil_end.date() for s in sessions] == nights and all(s.start < s.end for s in sessions)


def test_an_empty_google_page_leaves_the_list_out() -> None:
    assert google_page("steps", []) == b"{}"
    assert orjson.loads(google_page("heart-rate", [], "MA==")) == {"nextPageToken": "MA=="}

"""The simulator's sleep pages: nights served in both vendors' shapes, which our normalizers and
daily aggregate turn back into exactly the simulated minutes (the nights themselves:
test_cohort.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import orjson
import pytest

from connectors.simulator.cohort import SyntheticCohort
from connectors.simulator.pages import fitbit_sleep, google_sleep
from connectors.simulator.world import World
from models.providers import Provider
from models.raw import RawPage
from tests.streams.daily.helpers import Store, batches_of

# 2026-11-01: US daylight saving time ends at 02:00, inside the night that ends that morning
FIRST, LAST = date(2026, 10, 28), date(2026, 11, 3)
_GOOGLE_LABEL = {"wake": "awake"}


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
                stages = {(_GOOGLE_LABEL.get(k, k) if provider is Provider.GOOGLE_HEALTH else k): v
                          for k, v in night.minutes_by_level().items()}
                truth[f"{rid}|{day.isoformat()}"] = (night.minutes_asleep, night.minutes_in_bed, stages)
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

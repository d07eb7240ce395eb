"""A cohort like a real one (SimulatorOptions' defaults): about 80% of participant-days valid days by
the project's own rule (the Fitabase export: 739 of 919), non-wear days without a sample, partial
days short of 10 hours with steps, participants who never sync and serve nothing, stalled devices
whose days arrive late or not within the run, low batteries at about their share; and the complete
cohort (``SimulatorOptions.complete()``), every day valid. The same seed, the same cohort."""

from __future__ import annotations

import time
from datetime import date, timedelta

import orjson
import polars as pl
import pytest

from connectors.simulator.devices import paired_devices
from connectors.simulator.pages import fitbit_day, fitbit_sleep, google_points, google_resting
from connectors.simulator.service import SimulatorOptions
from connectors.simulator.world import World
from models.providers import Provider
from models.samples import Metric
from streams.daily.aggregate import DailyRules, summarize

PARTICIPANTS, DAYS = 200, 14


def _days(world: World) -> list[date]:
    return [world.first_day + timedelta(days=i) for i in range(DAYS)]


def _valid_share(world: World) -> float:
    """The share of the cohort's participant-days that ``summarize`` calls valid (local minutes as samples)."""
    keys, ts, values = [], [], []
    for person in world.cohort.participant_ids:
        for day in _days(world):
            for minute, count in enumerate(world.cohort.minute_steps(person, day)):
                if count:  # as Google lists them: a minute without steps adds nothing to either figure
                    keys.append(f"{person}|{day}")
                    ts.append(minute * 60)
                    values.append(float(count))
    rows = pl.DataFrame({"key": keys, "metric": [Metric.STEPS.value] * len(keys), "ts": ts, "offset": [0] * len(ts),
                         "value": values, "label": [""] * len(ts), "duration": [60] * len(ts)})
    valid = summarize(rows, DailyRules())["valid_day"].sum()  # a day without one step has no row: not valid
    return float(valid) / (PARTICIPANTS * DAYS)


@pytest.fixture(scope="module")
def realistic() -> World:
    return SimulatorOptions(participants=PARTICIPANTS, days=DAYS, seed=11).build_world()


def test_about_four_in_five_participant_days_are_valid(realistic: World) -> None:
    share = _valid_share(realistic)
    assert 0.75 <= share <= 0.85, share
    assert _valid_share(SimulatorOptions.complete(participants=PARTICIPANTS, days=DAYS, seed=11).build_world()) == 1.0


def test_non_wear_and_partial_days_at_their_shares(realistic: World) -> None:
    cohort, kinds = realistic.cohort, {"worn": 0, "partial": 0, "non-wear": 0}
    for person in cohort.participant_ids:
        if cohort.never_syncs(person):
            assert all(cohort.worn(person, day) == (0, 0) for day in _days(realistic))
            continue
        for day in _days(realistic):
            start, end = cohort.worn(person, day)
            steps, rates = cohort.minute_steps(person, day), cohort.minute_heart_rate(person, day)
            if (start, end) == (0, 1440):
                kinds["worn"] += 1
                continue
            assert cohort.sleep_night(person, day) is None  # not on the wrist that morning
            assert not any(steps[:start]) and not any(steps[end:]) and all(r is None for r in rates[:start])
            if start == end:
                kinds["non-wear"] += 1
                assert not any(steps) and all(rate is None for rate in rates)  # no sample at all
            else:
                kinds["partial"] += 1
                assert 180 <= end - start <= 480 and any(steps[start:end])
                assert sum(1 for hour in range(24) if any(steps[hour * 60:hour * 60 + 60])) < 10
    days = sum(kinds.values())
    assert 0.06 <= kinds["non-wear"] / days <= 0.10 and 0.08 <= kinds["partial"] / days <= 0.12, kinds


def test_participants_who_never_sync_serve_no_samples(realistic: World) -> None:
    silent = [p for p in realistic.cohort.participant_ids if realistic.cohort.never_syncs(p)]
    assert 0.01 * PARTICIPANTS <= len(silent) <= 0.06 * PARTICIPANTS
    now = time.time()
    for person in silent:
        for provider in Provider:
            account = realistic.account(provider, person)
            assert realistic.stalled(account)
            start, end = realistic.midnight(account, realistic.first_day), realistic.data_end
            assert paired_devices(realistic, account, now)[0].last_sync < start  # weeks before the first day
            assert google_points(realistic, account, "steps", start, end) == []
            assert google_points(realistic, account, "heart-rate", start, end) == []
            assert google_resting(realistic, account) == []
            for day in _days(realistic):
                for resource, key in (("steps", "activities-steps-intraday"), ("heart", "activities-heart-intraday")):
                    assert orjson.loads(fitbit_day(realistic, account, resource, day))[key]["dataset"] == []
                assert orjson.loads(fitbit_sleep(realistic, account, day))["sleep"] == []
    realistic.account(Provider.FITBIT, silent[0]).subscribed = True
    for _ in range(20):
        assert all(account.participant_id != silent[0] for account, _ in realistic.sync_tick())


def test_stalled_devices_send_their_days_late_or_not_within_the_run() -> None:
    world = SimulatorOptions(participants=PARTICIPANTS, days=DAYS, seed=5, late_share=0.0, duplicate_share=0.0,
                             stalled_device_share=0.5).build_world()
    accounts = [world.account(Provider.FITBIT, p) for p in world.cohort.participant_ids
                if not world.cohort.never_syncs(p)]
    stalled = [a for a in accounts if a.synced_until < world.data_end]
    assert 0.4 * len(accounts) <= len(stalled) <= 0.6 * len(accounts)
    now = time.time()
    for account in stalled:  # silent since a local midnight 1-5 days before the end: its last sync that old
        silent_days = [d for d in _days(world) if world.visible_minutes(account, d) == 0]
        assert 1 <= len(silent_days) <= 5 and silent_days[-1] == world.last_day
        assert world.visible_minutes(account, silent_days[0] - timedelta(days=1)) >= 1380  # DST: 23 h
        assert paired_devices(world, account, now)[0].last_sync <= account.synced_until
        account.subscribed = True
    staying = [a for a in stalled if world.stalled(a)]
    assert 0.3 * len(stalled) <= len(staying) <= 0.7 * len(stalled)
    assert not world.fully_synced()
    caught_up: dict[str, list[date]] = {}
    for _ in range(12):
        for account, days in world.sync_tick():
            caught_up[account.participant_id] = days
    assert world.fully_synced()  # what will arrive within the run has
    assert all(a.synced_until == world.data_end for a in stalled if a not in staying)
    assert all(a.synced_until < world.data_end and a.participant_id not in caught_up for a in staying)
    assert len(caught_up) == len(stalled) - len(staying) == world.stats["stalls_ended"]
    for account in stalled:
        if account.participant_id in caught_up:  # the burst names the days it brought
            assert caught_up[account.participant_id][-1] == world.last_day


def test_low_batteries_at_about_their_share() -> None:
    now = time.time()
    for share in (0.1, 0.0):
        world = SimulatorOptions(participants=PARTICIPANTS, days=DAYS, seed=3, low_battery_share=share).build_world()
        levels = [d.battery_level for p in world.cohort.participant_ids
                  for d in paired_devices(world, world.account(Provider.GOOGLE_HEALTH, p), now)]
        low = sum(level < 20 for level in levels) / len(levels)
        assert share - 0.05 <= low <= share + 0.05 and all(0 <= level <= 100 for level in levels), low
    assert low == 0.0 and min(levels) >= 20


def test_the_complete_cohort_and_the_same_seed() -> None:
    complete = SimulatorOptions.complete(participants=20, days=3)
    assert (complete.non_wear_share, complete.partial_day_share, complete.stalled_device_share,
            complete.low_battery_share, complete.never_sync_share) == (0, 0, 0, 0, 0)
    assert complete.participants == 20 and complete.late_share == SimulatorOptions().late_share
    world = complete.build_world()
    assert all(world.cohort.worn(p, d) == (0, 1440) and not world.cohort.never_syncs(p)
               for p in world.cohort.participant_ids for d in _days(world)[:3])
    assert not any(world.stalled(world.account(Provider.FITBIT, p)) for p in world.cohort.participant_ids)
    one, two = (SimulatorOptions(participants=30, days=DAYS, seed=9).build_world() for _ in range(2))
    for person in one.cohort.participant_ids:
        assert [one.cohort.worn(person, d) for d in _days(one)] == [two.cohort.worn(person, d) for d in _days(two)]
        assert one.cohort.minute_steps(person, one.last_day) == two.cohort.minute_steps(person, two.last_day)
        first, second = one.account(Provider.FITBIT, person), two.account(Provider.FITBIT, person)
        assert (first.synced_until, first.resumes_in) == (second.synced_until, second.resumes_in)
    with pytest.raises(ValueError, match="shares"):
        SimulatorOptions(non_wear_share=0.6, partial_day_share=0.6).build_world()

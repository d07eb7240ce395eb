"""The synthetic cohort: deterministic, and nights that agree with the step series."""

from __future__ import annotations

from datetime import date, timedelta

from connectors.simulator.cohort import SyntheticCohort

# 2026-11-01: US daylight saving time ends at 02:00, inside the night that ends that morning
FIRST, LAST = date(2026, 10, 28), date(2026, 11, 3)


def _days() -> list[date]:
    return [FIRST + timedelta(days=i) for i in range((LAST - FIRST).days + 1)]


def test_each_night_runs_from_the_evenings_last_step_to_the_mornings_first() -> None:
    cohort = SyntheticCohort(30, seed=3)
    nights = 0
    for person in cohort.participant_ids:
        for day in _days():
            night = cohort.sleep_night(person, day)
            if night is None:
                continue
            nights += 1
            evening, morning = cohort.minute_steps(person, day - timedelta(days=1)), cohort.minute_steps(person, day)
            bedtime, wake = 1440 + night.start_minute, night.start_minute + night.minutes_in_bed
            assert not any(evening[bedtime:]) and not any(morning[:wake])
            assert 6 * 60 <= night.minutes_in_bed <= 10 * 60
            assert 0.85 * night.minutes_in_bed <= night.minutes_asleep < night.minutes_in_bed
            assert {"light", "deep", "rem"} <= set(night.minutes_by_level())
    assert 0.9 * 30 * len(_days()) <= nights < 30 * len(_days())  # a few nights have no log


def test_the_same_seed_gives_the_same_people_and_minutes() -> None:
    one, two = SyntheticCohort(5, seed=9), SyntheticCohort(5, seed=9)
    assert one.participant_ids == two.participant_ids != SyntheticCohort(5, seed=10).participant_ids
    person = one.participant_ids[0]
    steps = one.minute_steps(person, FIRST)
    assert len(steps) == 1440 and steps == two.minute_steps(person, FIRST)
    assert one.minute_heart_rate(person, FIRST, steps) == two.minute_heart_rate(person, FIRST)
    assert one.timezone(person) == two.timezone(person)


def test_the_resting_rate_is_the_base_of_the_days_heart_rate_and_the_basal_rate_a_persons_own() -> None:
    cohort = SyntheticCohort(20, seed=4)
    for person in cohort.participant_ids:
        for day in _days():
            resting = cohort.resting_heart_rate(person, day)
            steps = cohort.minute_steps(person, day)
            still = [r for r, s in zip(cohort.minute_heart_rate(person, day, steps), steps, strict=True)
                     if r is not None and s == 0]
            median_still = sorted(still)[len(still) // 2]  # minutes without steps sit near the resting rate
            assert 52 <= resting <= 72 and abs(median_still - resting) <= 7
        assert cohort.basal_calories(person) == SyntheticCohort(20, seed=4).basal_calories(person)
        assert 1350 <= cohort.basal_calories(person) <= 1950

"""The core stream's semantics on the pure functions: reference values, idempotence, late data."""

from __future__ import annotations

import zoneinfo
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from connectors.simulator.cohort import SyntheticCohort
from models.daily import HR_ZONES
from models.errors import Reason
from models.providers import Provider
from models.samples import Attribute, Metric, Resolution, SampleBatch, Unit
from streams.daily.aggregate import DailyRules
from streams.daily.process import DayPolicy, finalize_due
from tests.streams.daily.helpers import Store, batches_of, cohort_pages, shuffled

DAY = date(2026, 5, 12)
COHORT = SyntheticCohort(6, seed=21)


def _watermark(day: date, days_after: float = 1) -> int:
    return int(datetime.combine(day, datetime.min.time(), tzinfo=UTC).timestamp() + days_after * 86400)


def _expected(person: str, rules: DailyRules, *, fitbit: bool) -> dict[str, object]:
    """Every summary field, computed here from the cohort's own minute lists (plain Python)."""
    steps = COHORT.minute_steps(person, DAY)
    rates = COHORT.minute_heart_rate(person, DAY)
    zone = zoneinfo.ZoneInfo(COHORT.timezone(person))
    midnight = datetime(DAY.year, DAY.month, DAY.day, tzinfo=zone)
    ts = [int((midnight + timedelta(minutes=m)).timestamp()) for m in range(1440)]
    hr = [r for r in rates if r is not None]
    # worn minute: a step record (Fitbit lists every minute; Google only minutes with steps) or an HR sample
    worn = [fitbit or s > 0 or r is not None for s, r in zip(steps, rates, strict=True)]
    still = [w for w in range(144) if all(steps[m] == 0 and worn[m] for m in range(w * 10, w * 10 + 10))]
    resting = sorted(rates[m] for w in still for m in range(w * 10, w * 10 + 10) if rates[m] is not None)
    zones = dict.fromkeys(HR_ZONES, 0)
    for r in hr:
        name = ("Peak" if r >= rules.peak_min_bpm else "Cardio" if r >= rules.cardio_min_bpm
                else "Fat Burn" if r >= rules.fat_burn_min_bpm else "Out of Range")
        zones[name] += 1
    hours = sum(1 for h in range(24) if sum(steps[h * 60:h * 60 + 60]) > 0)
    total = sum(steps)
    stepped = [t for t, s in zip(ts, steps, strict=True) if fitbit or s > 0]
    hr_ts = [t for t, r in zip(ts, rates, strict=True) if r is not None]
    return {
        "steps": total, "vendor_steps": total if fitbit else None,
        "hr_min": float(min(hr)), "hr_max": float(max(hr)), "hr_mean": pytest.approx(sum(hr) / len(hr)),
        "minutes_with_hr": sum(1 for r in hr if r > 0),
        "approx_resting_hr": float(resting[round((len(resting) - 1) * 0.10)]) if resting else None,
        "zone_minutes": zones, "hours_with_steps": hours,
        "valid_day": hours >= rules.valid_min_hours and rules.valid_min_steps <= total <= rules.valid_max_steps,
        "samples": len(stepped) + len(hr) + (1 if fitbit else 0),
        "first_sample_at": min(stepped + hr_ts), "last_sample_at": max(stepped + hr_ts),
        "sleep_minutes_asleep": None, "rejects": 0, "final": False, "late": False,
    }


def test_every_summary_field_matches_an_independent_computation() -> None:
    store = Store()
    store.apply(batches_of(cohort_pages(COHORT, [DAY])), watermark=_watermark(DAY))
    assert len(store.daily) == len(COHORT.participant_ids)
    for n, person in enumerate(COHORT.participant_ids):
        summary = store.daily[f"R{person[1:]}|{DAY.isoformat()}"]
        expected = _expected(person, store.policy.rules, fitbit=n % 2 == 0)
        got = {field: getattr(summary, field) for field in expected}
        assert got == expected, person


def test_same_pages_twice_shuffled_or_with_duplicates_give_the_same_summaries() -> None:
    cohort = SyntheticCohort(100, seed=4)
    week = [DAY + timedelta(days=i) for i in range(5)]
    batches = batches_of(cohort_pages(cohort, week))  # 1,000 pages
    watermark = _watermark(week[-1])
    clean = Store()
    clean.apply(batches, watermark=watermark)
    assert len(clean.daily) == 500

    twice, mixed, dupes = Store(), Store(), Store()
    twice.apply(batches + batches, watermark=watermark)
    mixed.apply(shuffled(batches, seed=1), watermark=watermark)
    extra = shuffled(batches, seed=2)[: int(len(batches) * 0.3)]
    dupes.apply(shuffled(batches + extra, seed=3), watermark=watermark)
    for other in (twice, mixed, dupes):
        assert other.comparable() == clean.comparable()
    assert all(s.duplicates > 0 for s in twice.daily.values())


def test_late_data_revises_the_day_and_is_flagged_after_final() -> None:
    person = COHORT.participant_ids[0]
    key = f"R{person[1:]}|{DAY.isoformat()}"
    pages = cohort_pages(COHORT, [DAY])
    steps_page = [p for p in pages if p[0] == f"R{person[1:]}" and "steps" in p[1].data_type]
    heart_page = [p for p in pages if p[0] == f"R{person[1:]}" and "heart" in p[1].data_type]
    store = Store()
    store.apply(batches_of(steps_page), watermark=_watermark(DAY))
    first = store.daily[key]
    assert (first.revision, first.final, first.late) == (1, False, False)

    # 6 days late (within grace): revises, not late
    store.apply(batches_of(heart_page), watermark=_watermark(DAY, 6))
    six = store.daily[key]
    assert (six.revision, six.final, six.late) == (2, False, False) and six.hr_min is not None

    # past the grace period the day becomes final
    update = finalize_due(store.days, policy=store.policy, watermark=_watermark(DAY, 9))
    store.days.update(update.states)
    store.daily.update({s.key: s for s in update.summaries})
    final = store.daily[key]
    assert (final.revision, final.final, final.late) == (3, True, False)
    assert final.steps == six.steps and final.hr_mean == six.hr_mean

    # 30 days late: still applied, flagged late
    store.apply(_bumped(batches_of(steps_page)), watermark=_watermark(DAY, 30))
    late = store.daily[key]
    assert (late.revision, late.final, late.late) == (4, True, True)
    assert late.steps == final.steps + 1440 and late.revisions == 1440

    # beyond the state retention: not applied, but kept in the dead-letter topic
    store.apply(batches_of(steps_page), watermark=_watermark(DAY, 50))
    assert store.daily[key].revision == 4
    assert [letter.reason for letter in store.letters] == [Reason.DAY_EXPIRED] * len(store.letters)
    assert store.letters


def _bumped(batches: list) -> list:  # type: ignore[type-arg]
    from models.samples import Metric

    return [replace(b, values=[v + 1 for v in b.values]) if b.metric is Metric.STEPS else b for b in batches]


def test_expired_days_leave_the_store() -> None:
    store = Store(DayPolicy(grace_s=86400, retention_s=3 * 86400))
    store.apply(batches_of(cohort_pages(COHORT, [DAY])), watermark=_watermark(DAY))
    update = finalize_due(store.days, policy=store.policy, watermark=_watermark(DAY, 5))
    assert sorted(update.deletes) == sorted(store.days) and not update.summaries


def test_rejects_are_counted_once_per_day_however_often_replayed() -> None:
    from models.samples import Metric
    from tests.builders import fitbit_intraday_body, fitbit_page, minute_dataset

    values = [70] * 1440
    values[100], values[200], values[300] = 10, 300, 255  # three impossible heart rates
    page = fitbit_page("activities-heart-intraday", fitbit_intraday_body("heart", DAY, minute_dataset(values)),
                       day=DAY, timezone="Europe/London")
    store = Store()
    for _ in range(3):
        store.apply(batches_of([("R1", page)]), watermark=_watermark(DAY))
    summary = store.daily[f"R1|{DAY.isoformat()}"]
    assert summary.rejects == 3 and summary.minutes_with_hr == 1437
    assert summary.duplicates == 2 * 1437 and summary.revision == 3
    assert all(b.metric is Metric.HEART_RATE for b in batches_of([("R1", page)]))


def test_intraday_gets_each_new_or_changed_sample_once() -> None:
    batches = batches_of(cohort_pages(COHORT, [DAY]))
    every = sorted((b.research_id, b.metric.value, t, v) for b in batches
                   for t, v in zip(b.timestamps, b.values, strict=True))
    store = Store()
    store.apply(batches, watermark=_watermark(DAY))
    assert store.intraday_samples() == every and len(every) > 10_000
    store.intraday.clear()
    changed = batches[0]
    revised = replace(changed, timestamps=changed.timestamps[:1], values=[changed.values[0] + 1])
    store.apply([*shuffled(batches, 3), revised], watermark=_watermark(DAY), chunk=10_000)  # duplicates + one change
    assert store.intraday_samples() == [(changed.research_id, changed.metric.value, changed.timestamps[0],
                                         changed.values[0] + 1)]


# --------------------------------------------------------------------------- vendor deletions
def _deletion(research_id: str, metric: Metric, local_date: str, start: int, end: int, *,
              clock: str = "utc") -> SampleBatch:
    return SampleBatch(research_id=research_id, metric=metric, unit=Unit.MIXED, resolution=Resolution.EVENT,
                       source=Provider.GOOGLE_HEALTH, utc_offset_s=0, local_date=local_date, timestamps=[],
                       values=[], attributes={"clock": clock}, deleted=[[start, end]])


def _without(batches: list[SampleBatch], research_id: str, metrics: set[Metric], start: int, end: int
             ) -> list[SampleBatch]:
    """The batches as if the vendor never had the samples in [start, end)."""
    out = []
    for b in batches:
        if b.research_id != research_id or b.metric not in metrics:
            out.append(b)
            continue
        keep = [i for i, t in enumerate(b.timestamps) if not start <= t < end]
        out.append(replace(b, timestamps=[b.timestamps[i] for i in keep], values=[b.values[i] for i in keep],
                           labels=None if b.labels is None else [b.labels[i] for i in keep],
                           durations=None if b.durations is None else [b.durations[i] for i in keep]))
    return out


def _window() -> tuple[str, int, int]:
    person = COHORT.participant_ids[1]
    noon = int(datetime.combine(DAY, datetime.min.time(), tzinfo=UTC).timestamp()) + 12 * 3600
    return f"R{person[1:]}", noon - 8 * 3600, noon + 4 * 3600  # daytime somewhere in the cohort's zones


def test_a_deletion_leaves_the_days_as_if_the_samples_never_came() -> None:
    batches, watermark = batches_of(cohort_pages(COHORT, [DAY])), _watermark(DAY)
    rid, start, end = _window()
    deleted, clean = Store(), Store()
    deleted.apply(batches, watermark=watermark)
    before = dict(deleted.daily)
    dates = sorted({b.local_date for b in batches if b.research_id == rid})
    deleted.apply([_deletion(rid, m, d, start, end) for m in (Metric.STEPS, Metric.HEART_RATE)
                   for d in [*dates, "2026-05-01"]], watermark=watermark)  # a day without state: nothing
    clean.apply(_without(batches, rid, {Metric.STEPS, Metric.HEART_RATE}, start, end), watermark=watermark)
    assert deleted.comparable() == clean.comparable()
    affected = {k for k in deleted.daily if k.startswith(rid + "|")}
    assert affected and all(deleted.daily[k].revision == before[k].revision + 1 for k in affected)
    assert all(deleted.daily[k] == before[k] for k in deleted.daily if k not in affected)  # unaffected: unchanged
    assert f"{rid}|2026-05-01" not in deleted.days
    removals = [b for b in deleted.intraday if b.deleted]
    gone = sum(1 for b in batches if b.research_id == rid and b.metric in (Metric.STEPS, Metric.HEART_RATE)
               for t in b.timestamps if start <= t < end)
    assert gone > 100 and sum(len(b) for b in removals) == gone  # the sink is told each removed sample
    assert all(start <= t < end for b in removals for t in b.timestamps)


def test_a_deleted_sample_sent_again_comes_back_in_arrival_order() -> None:
    batches, watermark = batches_of(cohort_pages(COHORT, [DAY])), _watermark(DAY)
    rid, start, end = _window()
    mine = [b for b in batches if b.research_id == rid and b.metric is Metric.STEPS]
    deletions = [_deletion(rid, Metric.STEPS, b.local_date, start, end) for b in mine]
    whole, gone, back = Store(), Store(), Store()
    whole.apply(mine, watermark=watermark)
    gone.apply(mine + deletions, watermark=watermark, chunk=1000)  # one take: sent, then deleted
    back.apply(mine + deletions + mine, watermark=watermark, chunk=1000)  # deleted, then sent again
    steps = {k: s.steps for k, s in whole.daily.items()}
    expected_gone = sum(v for b in mine for t, v in zip(b.timestamps, b.values, strict=True) if start <= t < end)
    assert expected_gone > 0
    assert sum(s.steps for s in gone.daily.values()) == sum(steps.values()) - expected_gone
    assert {k: s.steps for k, s in back.daily.items()} == steps
    assert back.comparable() == whole.comparable()


def test_a_civil_deletion_compares_local_wall_clock_times() -> None:
    batches, watermark = batches_of(cohort_pages(COHORT, [DAY])), _watermark(DAY)
    rid = _window()[0]
    mine = [b for b in batches if b.research_id == rid and b.metric is Metric.STEPS and b.local_date == DAY.isoformat()]
    local_ten = int(datetime.combine(DAY, datetime.min.time(), tzinfo=UTC).timestamp()) + 10 * 3600
    store = Store()
    store.apply(mine, watermark=watermark)
    store.apply([_deletion(rid, Metric.STEPS, DAY.isoformat(), local_ten, local_ten + 3600, clock="local")],
                watermark=watermark)
    in_hour = sum(v for b in mine for t, v in zip(b.timestamps, b.values, strict=True)
                  if local_ten <= t + b.utc_offset_s < local_ten + 3600)
    total = sum(sum(b.values) for b in mine)
    assert in_hour > 0 and store.daily[f"{rid}|{DAY.isoformat()}"].steps == total - in_hour


def test_a_day_whose_sleep_is_still_processing_stays_open_past_the_grace_period() -> None:
    rid = _window()[0]
    stage = SampleBatch(research_id=rid, metric=Metric.SLEEP_STAGE, unit=Unit.SECONDS, resolution=Resolution.SEGMENT,
                        source=Provider.GOOGLE_HEALTH, utc_offset_s=0, local_date=DAY.isoformat(),
                        timestamps=[_watermark(DAY, 0.1)], values=[600.0], labels=["light"], durations=[600],
                        attributes={"processed": False})
    policy = DayPolicy(grace_s=86400, retention_s=30 * 86400)
    store = Store(policy)
    store.apply([stage], watermark=_watermark(DAY))
    assert finalize_due(store.days, policy=policy, watermark=_watermark(DAY, 2.5)).summaries == []
    store.apply([replace(stage, attributes={"processed": True})], watermark=_watermark(DAY))
    final = finalize_due(store.days, policy=policy, watermark=_watermark(DAY, 2.5)).summaries
    assert [s.final for s in final] == [True]
    store.apply([stage], watermark=_watermark(DAY))  # still processing, but twice the grace has passed
    assert len(finalize_due(store.days, policy=policy, watermark=_watermark(DAY, 3.5)).summaries) == 1


def test_a_device_without_a_battery_level_sent_again_is_a_duplicate() -> None:
    rid = _window()[0]
    device = SampleBatch(research_id=rid, metric=Metric.DEVICE, unit=Unit.PERCENT, resolution=Resolution.EVENT,
                         source=Provider.FITBIT, utc_offset_s=3600, local_date=DAY.isoformat(),
                         timestamps=[_watermark(DAY, 0.5)], values=[None], labels=["Dabc"],  # type: ignore[list-item]  # a null battery level
                         attributes={"device_type": "TRACKER"})
    store = Store()
    store.apply([device], watermark=_watermark(DAY))
    store.apply([device], watermark=_watermark(DAY))
    summary = store.daily[f"{rid}|{DAY.isoformat()}"]
    assert (summary.samples, summary.duplicates, summary.revisions) == (1, 1, 0)
    assert [b.values for b in store.intraday] == [[None]]  # sent on once, still without a level


def test_a_device_that_last_synced_before_the_retention_is_passed_on_not_dead_lettered() -> None:
    rid = _window()[0]
    device = SampleBatch(research_id=rid, metric=Metric.DEVICE, unit=Unit.PERCENT, resolution=Resolution.EVENT,
                         source=Provider.FITBIT, utc_offset_s=0, local_date=DAY.isoformat(),
                         timestamps=[_watermark(DAY, 0.5)], values=[40.0], labels=["Dscale"])
    steps = SampleBatch(research_id=rid, metric=Metric.STEPS, unit=Unit.STEPS, resolution=Resolution.MINUTE,
                        source=Provider.FITBIT, utc_offset_s=0, local_date=DAY.isoformat(),
                        timestamps=[_watermark(DAY, 0.5)], values=[12.0])
    store = Store(DayPolicy(retention_s=10 * 86400))
    store.apply([device, steps], watermark=_watermark(DAY, 30))  # a month after that day
    assert [letter.reason for letter in store.letters] == [Reason.DAY_EXPIRED]  # the steps: late data
    assert store.intraday == [device] and store.days == {}  # the device: on to the device table, no state


def test_a_daily_figure_deletion_takes_that_figure_of_that_date_only() -> None:
    rid = _window()[0]

    def figures(local_date: str, at: int) -> SampleBatch:
        return SampleBatch(research_id=rid, metric=Metric.VENDOR_DAILY, unit=Unit.MIXED, resolution=Resolution.DAY,
                           source=Provider.FITBIT, utc_offset_s=0, local_date=local_date, timestamps=[at, at, at],
                           values=[61.0, 2400.0, 9000.0], labels=["resting_heart_rate", "calories_out", "steps"])

    day, next_day = DAY.isoformat(), (DAY + timedelta(days=1)).isoformat()
    store = Store()
    store.apply([figures(day, _watermark(DAY, 0)), figures(next_day, _watermark(DAY, 1))], watermark=_watermark(DAY))
    deletion = replace(_deletion(rid, Metric.VENDOR_DAILY, day, 0, 1), attributes={"clock": "day",
                                                                                    "label": "resting_heart_rate"})
    store.apply([deletion], watermark=_watermark(DAY))
    assert store.daily[f"{rid}|{day}"].vendor_resting_hr is None
    assert store.daily[f"{rid}|{day}"].vendor_steps == 9000  # the day's other figures stay
    assert store.daily[f"{rid}|{next_day}"].vendor_resting_hr == 61.0  # and the next day's figure


def _session(rid: str, stages: list[tuple[str, int]], **attributes: Attribute) -> SampleBatch:
    """One sleep session's stages, back to back from 01:00 UTC of DAY (label, minutes)."""
    start, ts, durations = _watermark(DAY, 1 / 24), [], []
    for _, minutes in stages:
        ts.append(start)
        durations.append(60 * minutes)
        start += 60 * minutes
    return SampleBatch(research_id=rid, metric=Metric.SLEEP_STAGE, unit=Unit.SECONDS, resolution=Resolution.SEGMENT,
                       source=Provider.GOOGLE_HEALTH, utc_offset_s=0, local_date=DAY.isoformat(), timestamps=ts,
                       values=[float(d) for d in durations], labels=[label for label, _ in stages],
                       durations=durations, attributes={"log_id": "s1", "is_main_sleep": True, **attributes})


def test_a_session_whose_stages_are_recomputed_keeps_only_the_new_ones() -> None:
    rid = _window()[0]
    store = Store()
    store.apply([_session(rid, [("light", 60), ("deep", 60)], processed=False)], watermark=_watermark(DAY))
    store.apply([_session(rid, [("light", 30), ("deep", 90)], processed=True)], watermark=_watermark(DAY))
    summary = store.daily[f"{rid}|{DAY.isoformat()}"]
    assert summary.sleep_stage_minutes == {"light": 30, "deep": 90}  # not light 30 + 60, deep 60 + 90
    removed = [b for b in store.intraday if b.deleted]
    assert [(b.labels, b.timestamps) for b in removed] == [(["deep"], [_watermark(DAY, 1 / 24) + 3600])]
    assert store.intraday.index(removed[0]) < len(store.intraday) - 1  # removed before the new stages are sent


def test_a_session_that_stops_being_the_main_sleep_is_revised() -> None:
    rid = _window()[0]
    store = Store()
    store.apply([_session(rid, [("light", 60)])], watermark=_watermark(DAY))
    store.apply([_session(rid, [("light", 60)], is_main_sleep=False)], watermark=_watermark(DAY))
    summary = store.daily[f"{rid}|{DAY.isoformat()}"]
    assert (summary.revisions, summary.duplicates) == (1, 0)
    assert store.intraday[-1].attributes["is_main_sleep"] is False  # the sink rewrites the row as a nap


def test_a_night_across_a_clock_change_keeps_both_parts_when_they_come_in_two_takes() -> None:
    rid = _window()[0]
    before, after = _session(rid, [("light", 60)]), _session(rid, [("deep", 60)])
    after = replace(after, utc_offset_s=-3600, timestamps=[t + 3600 for t in after.timestamps])  # the hour after
    store = Store()
    store.apply([before], watermark=_watermark(DAY))
    store.apply([after], watermark=_watermark(DAY))  # the other part of the same session, another offset
    assert store.daily[f"{rid}|{DAY.isoformat()}"].sleep_stage_minutes == {"light": 60, "deep": 60}

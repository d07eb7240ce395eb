"""Fitbit intraday pages (streams/normalize/fitbit/intraday.py): UTC times across DST days and zone
changes, fixed offsets, 1 s heart rate, string values, rejects with reasons, unusable pages."""

from __future__ import annotations

from datetime import UTC, date, datetime

import orjson
import pytest

from models.errors import DecodeError, Reason
from models.samples import Metric, Resolution
from streams.normalize import normalize
from tests.builders import SECRET, clock, days, fitbit_intraday_body, fitbit_page, minute_dataset

RID = "R0123456789abcdef0123"


def _utc(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def _samples(result, metric: Metric) -> list[tuple[int, float]]:  # type: ignore[no-untyped-def]
    return sorted((t, v) for b in result.batches if b.metric is metric
                  for t, v in zip(b.timestamps, b.values, strict=True))


def test_minute_steps_day_becomes_one_batch_in_utc() -> None:
    day = date(2026, 1, 15)
    values = [i % 50 for i in range(1440)]
    page = fitbit_page("activities-steps-intraday", fitbit_intraday_body("steps", day, minute_dataset(values),
                                                                          daily="35280"), day=day)
    result = normalize(page, RID, secret=SECRET)
    steps = [b for b in result.batches if b.metric is Metric.STEPS]
    assert len(steps) == 1
    batch = steps[0]
    assert (len(batch), batch.utc_offset_s, batch.local_date) == (1440, -18000, "2026-01-15")
    assert batch.resolution is Resolution.MINUTE
    assert batch.timestamps[0] == _utc("2026-01-15T05:00:00")  # local midnight EST
    assert batch.values == [float(v) for v in values]
    daily = [b for b in result.batches if b.metric is Metric.VENDOR_DAILY]
    assert daily[0].labels == ["steps"] and daily[0].values == [35280.0]  # the daily value arrives as a string
    assert result.input_samples == result.samples == 1441 and result.rejects == []


def test_spring_forward_day_has_1380_distinct_minutes() -> None:
    day = date(2026, 3, 8)  # US DST starts 02:00 -> 03:00
    minutes = [m for m in range(1440) if not 120 <= m < 180]
    dataset = [{"time": clock(m), "value": 1} for m in minutes]
    result = normalize(fitbit_page("activities-steps-intraday", fitbit_intraday_body("steps", day, dataset), day=day),
                       RID, secret=SECRET)
    samples = _samples(result, Metric.STEPS)
    times = [t for t, _ in samples]
    assert len(times) == len(set(times)) == 1380
    assert times[-1] - times[0] == 1379 * 60  # contiguous in UTC: nothing lost, nothing doubled
    assert sorted({b.utc_offset_s for b in result.batches}) == [-18000, -14400]
    assert {b.local_date for b in result.batches} == {"2026-03-08"}


def test_fall_back_day_has_1500_distinct_minutes() -> None:
    day = date(2026, 11, 1)  # US DST ends 02:00 -> 01:00: the 01:xx hour is listed twice
    minutes = list(range(120)) + list(range(60, 1440))
    dataset = [{"time": clock(m), "value": 60 + i % 40} for i, m in enumerate(minutes)]
    result = normalize(fitbit_page("activities-heart-intraday", fitbit_intraday_body("heart", day, dataset), day=day),
                       RID, secret=SECRET)
    samples = _samples(result, Metric.HEART_RATE)
    times = [t for t, _ in samples]
    assert len(times) == len(set(times)) == 1500
    assert times[-1] - times[0] == 1499 * 60
    assert times[0] == _utc("2026-11-01T04:00:00")
    # the second 01:00 is an hour after the first
    assert [v for _, v in samples][120] == 60 + 120 % 40


def test_nonexistent_local_times_are_rejected_not_shifted() -> None:
    day = date(2026, 3, 8)
    result = normalize(fitbit_page("activities-steps-intraday",
                                   fitbit_intraday_body("steps", day, minute_dataset([3] * 1440)), day=day),
                       RID, secret=SECRET)
    assert [(r.reason, r.count) for r in result.rejects] == [(Reason.NONEXISTENT_LOCAL_TIME, 60)]
    assert orjson.loads(result.rejects[0].original)[0] == {"time": "02:00:00", "value": 3}
    assert result.samples + result.rejected == result.input_samples == 1440


def test_participant_changing_time_zone_mid_week_keeps_every_minute() -> None:
    week = days(date(2026, 6, 1), 7)
    zones = ["America/New_York"] * 3 + ["America/Los_Angeles"] * 4  # flies west on day 4
    seen: set[int] = set()
    local_dates = set()
    for day, zone in zip(week, zones, strict=True):
        page = fitbit_page("activities-steps-intraday", fitbit_intraday_body("steps", day, minute_dataset([1] * 1440)),
                           day=day, timezone=zone)
        result = normalize(page, RID, secret=SECRET)
        for batch in result.batches:
            if batch.metric is Metric.STEPS:
                assert not seen & set(batch.timestamps)
                seen |= set(batch.timestamps)
                local_dates.add(batch.local_date)
                assert batch.utc_offset_s == (-14400 if zone == "America/New_York" else -25200)
    assert len(seen) == 7 * 1440
    assert local_dates == {d.isoformat() for d in week}


def test_fixed_offset_when_only_offset_from_utc_is_known() -> None:
    day = date(2026, 7, 1)
    page = fitbit_page("activities-steps-intraday", fitbit_intraday_body("steps", day, minute_dataset([5, 6])),
                       day=day, timezone=None, utc_offset_ms=19800000)  # India, +05:30
    batch = next(b for b in normalize(page, RID, secret=SECRET).batches if b.metric is Metric.STEPS)
    assert batch.utc_offset_s == 19800
    assert batch.timestamps == [_utc("2026-06-30T18:30:00"), _utc("2026-06-30T18:31:00")]
    assert batch.local_date == "2026-07-01"


def test_string_valued_steps_are_numbers() -> None:
    day = date(2026, 2, 2)
    page = fitbit_page("activities-steps-intraday",
                       fitbit_intraday_body("steps", day, minute_dataset(["12", "0", "7"]), daily="19"), day=day)
    result = normalize(page, RID, secret=SECRET)
    start = _utc("2026-02-02T05:00:00")
    assert _samples(result, Metric.STEPS) == [(start + 60 * i, v) for i, v in enumerate([12.0, 0.0, 7.0])]


def test_one_second_heart_rate_day_with_gaps() -> None:
    day = date(2026, 4, 20)
    # three wear periods with gaps between them, 1 s apart inside each
    spans = [(8 * 3600, 8 * 3600 + 900), (12 * 3600, 12 * 3600 + 300), (23 * 3600 + 3000, 23 * 3600 + 3599)]
    dataset = [{"time": f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}", "value": 60 + s % 30}
               for start, end in spans for s in range(start, end + 1)]
    page = fitbit_page("activities-heart-intraday",
                       fitbit_intraday_body("heart", day, dataset, interval=1, dataset_type="second"),
                       day=day, detail="1sec", timezone="Europe/Berlin")
    result = normalize(page, RID, secret=SECRET)
    batches = [b for b in result.batches if b.metric is Metric.HEART_RATE]
    assert [b.resolution for b in batches] == [Resolution.SECOND]
    assert len(batches[0]) == len(dataset) == 901 + 301 + 600
    assert batches[0].timestamps[0] == _utc("2026-04-20T06:00:00")  # CEST is UTC+2


def test_impossible_values_are_rejects_with_reasons() -> None:
    day = date(2026, 5, 5)
    heart = [{"time": "00:00:00", "value": 15}, {"time": "00:01:00", "value": 251}, {"time": "00:02:00", "value": 80},
             {"time": "00:03:00", "value": "abc"}, {"time": "25:00:00", "value": 70}, {"value": 70}, "junk"]
    result = normalize(fitbit_page("activities-heart-intraday", fitbit_intraday_body("heart", day, heart), day=day),
                       RID, secret=SECRET)
    assert {(r.reason, r.count) for r in result.rejects} == {
        (Reason.HR_OUT_OF_RANGE, 2), (Reason.NOT_A_NUMBER, 1), (Reason.BAD_TIME, 3)}
    assert result.samples == 1 and result.input_samples == len(heart)

    steps = minute_dataset([-1, 1001, 1000, 0])
    result = normalize(fitbit_page("activities-steps-intraday", fitbit_intraday_body("steps", day, steps), day=day),
                       RID, secret=SECRET)
    assert {(r.reason, r.count) for r in result.rejects} == {
        (Reason.NEGATIVE_STEPS, 1), (Reason.STEPS_PER_MINUTE_TOO_HIGH, 1)}
    assert _samples(result, Metric.STEPS) == [(_utc("2026-05-05T04:02:00"), 1000.0), (_utc("2026-05-05T04:03:00"), 0.0)]


@pytest.mark.parametrize(("body", "reason", "field"), [
    (b"not json", Reason.NOT_JSON, None),
    (b"[1, 2]", Reason.BAD_FIELD, "$"),
    (b'{"activities-steps": []}', Reason.MISSING_FIELD, "activities-steps-intraday"),
    (b'{"activities-steps-intraday": {"dataset": 5}}', Reason.BAD_FIELD, "activities-steps-intraday.dataset"),
])
def test_unusable_pages_raise_with_the_field(body: bytes, reason: Reason, field: str | None) -> None:
    with pytest.raises(DecodeError) as info:
        normalize(fitbit_page("activities-steps-intraday", body, day=date(2026, 1, 1)), RID, secret=SECRET)
    assert info.value.reason is reason and info.value.field == field


def test_page_without_any_zone_names_the_missing_field() -> None:
    day = date(2026, 1, 1)
    page = fitbit_page("activities-steps-intraday", fitbit_intraday_body("steps", day, minute_dataset([1])), day=day,
                       timezone=None)
    with pytest.raises(DecodeError) as info:
        normalize(page, RID, secret=SECRET)
    assert info.value.reason is Reason.MISSING_FIELD and info.value.field == "timezone"


def test_empty_dataset_gives_no_samples_and_no_error() -> None:
    day = date(2026, 11, 1)  # a DST day: the zone conversion is where empty input once panicked
    result = normalize(fitbit_page("activities-heart-intraday", fitbit_intraday_body("heart", day, []), day=day),
                       RID, secret=SECRET)
    assert (result.samples, result.rejected, result.input_samples) == (0, 0, 0)


def test_a_date_time_of_today_is_the_pages_own_date() -> None:
    body = orjson.loads(fitbit_intraday_body("heart", date(2026, 5, 1), minute_dataset([70, 71]),
                                             daily={"restingHeartRate": 60}))
    body["activities-heart"][0]["dateTime"] = "today"
    page = fitbit_page("activities-heart-intraday", orjson.dumps(body), day=date(2026, 5, 5))  # the file's date
    result = normalize(page, RID, secret=SECRET)
    assert {b.local_date for b in result.batches} == {"2026-05-05"}
    assert _samples(result, Metric.HEART_RATE) == [(_utc("2026-05-05T04:00:00"), 70.0),
                                                    (_utc("2026-05-05T04:01:00"), 71.0)]
    with pytest.raises(DecodeError) as info:  # "today" of a page that has no date of its own
        normalize(fitbit_page("activities-heart-intraday", orjson.dumps(body)), RID, secret=SECRET)
    assert (info.value.reason, info.value.field) == (Reason.MISSING_FIELD, "activities-heart[0].dateTime")

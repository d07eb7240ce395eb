from __future__ import annotations

from datetime import UTC, datetime

import pytest

from models.errors import DecodeError, Reason
from models.samples import Metric, Resolution
from streams.normalize import normalize
from tests.builders import SECRET, google_page

RID = "R0123456789abcdef0123"


def _utc(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def _step(start: str, count: str, offset: str = "-18000s", minutes: int = 1) -> dict[str, object]:
    begin = datetime.fromisoformat(start.replace("Z", "+00:00"))
    end = datetime.fromtimestamp(begin.timestamp() + 60 * minutes, UTC)
    return {"name": "users/me/dataTypes/steps/dataPoints/x", "steps": {"count": count, "interval": {
        "startTime": start, "endTime": end.strftime("%Y-%m-%dT%H:%M:%SZ"), "startUtcOffset": offset,
        "endUtcOffset": offset}}}


def test_steps_int64_strings_and_local_dates_from_offsets() -> None:
    points = [_step("2026-01-10T04:59:00Z", "12"), _step("2026-01-10T05:00:00Z", "30")]
    result = normalize(google_page("steps", points, token="next-page"), RID, secret=SECRET)
    by_date = {b.local_date: b for b in result.batches}
    assert set(by_date) == {"2026-01-09", "2026-01-10"}  # 23:59 and 00:00 local (UTC-5)
    assert by_date["2026-01-10"].timestamps == [_utc("2026-01-10T05:00:00")]
    assert by_date["2026-01-10"].values == [30.0]
    assert all(b.resolution is Resolution.MINUTE and b.utc_offset_s == -18000 for b in result.batches)


def test_non_minute_intervals_keep_their_durations() -> None:
    result = normalize(google_page("steps", [_step("2026-01-10T12:00:00Z", "700", minutes=15)]), RID, secret=SECRET)
    batch = result.batches[0]
    assert batch.resolution is Resolution.SEGMENT and batch.durations == [900]


def test_heart_rate_samples_and_rejects() -> None:
    def hr(time: str, bpm: object) -> dict[str, object]:
        return {"heartRate": {"beatsPerMinute": bpm, "sampleTime": {"physicalTime": time, "utcOffset": "3600s"}}}

    points = [hr("2026-03-01T10:00:00Z", "64"), hr("2026-03-01T10:00:05.250Z", "251"), hr("2026-03-01T10:00:10Z", "x"),
              hr("yesterday", "70"), {"weight": {}}]
    result = normalize(google_page("heart-rate", points), RID, secret=SECRET)
    assert [(b.metric, b.values, b.timestamps, b.utc_offset_s) for b in result.batches] == [
        (Metric.HEART_RATE, [64.0], [_utc("2026-03-01T10:00:00")], 3600)]
    assert {(r.reason, r.count) for r in result.rejects} == {
        (Reason.HR_OUT_OF_RANGE, 1), (Reason.NOT_A_NUMBER, 1), (Reason.BAD_TIME, 2)}
    assert result.input_samples == 5 == result.samples + result.rejected


def test_daily_resting_heart_rate_uses_the_civil_date() -> None:
    points = [{"dailyRestingHeartRate": {"beatsPerMinute": "58", "date": {"year": 2026, "month": 2, "day": 3}}},
              {"dailyRestingHeartRate": {"beatsPerMinute": "57"}}]
    result = normalize(google_page("daily-resting-heart-rate", points), RID, secret=SECRET)
    got = [(b.local_date, b.labels, b.values) for b in result.batches]
    assert got == [("2026-02-03", ["resting_heart_rate"], [58.0])]
    assert [(r.reason, r.count) for r in result.rejects] == [(Reason.BAD_TIME, 1)]


def test_sleep_session_stages_summary_and_durations() -> None:
    session = {"sleep": {
        "type": "STAGES", "metadata": {"nap": False, "mainSleep": True},
        "interval": {"startTime": "2026-11-02T04:10:00Z", "startUtcOffset": "-18000s",
                     "endTime": "2026-11-02T11:30:00Z", "endUtcOffset": "-18000s"},
        "summary": {"minutesAsleep": "400", "minutesInSleepPeriod": "440",
                    "stagesSummary": [{"type": "DEEP", "minutes": "70"}, {"type": "REM", "duration": "920.400s"}]},
        "stages": [{"type": "LIGHT", "startTime": "2026-11-02T04:10:00Z", "endTime": "2026-11-02T05:00:00Z"},
                   {"type": "REM", "startTime": "2026-11-02T05:00:00Z", "duration": "920.400s"}],
    }}
    result = normalize(google_page("sleep", [session]), RID, secret=SECRET)
    stages = next(b for b in result.batches if b.metric is Metric.SLEEP_STAGE)
    assert stages.local_date == "2026-11-02" and stages.labels == ["light", "rem"]
    assert stages.durations == [3000, 920] and stages.attributes["is_main_sleep"] is True
    summary = next(b for b in result.batches if b.metric is Metric.VENDOR_SLEEP)
    figures = dict(zip(summary.labels or [], summary.values, strict=True))
    assert figures["minutes_asleep"] == 400 and figures["time_in_bed"] == 440
    assert figures["stage.rem.minutes"] == pytest.approx(15.34)


def test_empty_page_is_fine_and_bad_pages_name_the_field() -> None:
    assert normalize(google_page("steps", []), RID, secret=SECRET).batches == []
    with pytest.raises(DecodeError) as info:
        normalize(google_page("steps", "nope"), RID, secret=SECRET)  # type: ignore[arg-type]
    assert info.value.field == "dataPoints"


def test_an_offset_no_zone_has_is_a_bad_time_not_a_crash() -> None:
    def hr(offset: str) -> dict[str, object]:
        return {"heartRate": {"beatsPerMinute": "64", "sampleTime": {"physicalTime": "2026-03-01T10:00:00Z",
                                                                     "utcOffset": offset}}}

    result = normalize(google_page("heart-rate", [hr("3600s"), hr("1e300s"), hr("90000s")]), RID, secret=SECRET)
    assert [(b.values, b.utc_offset_s) for b in result.batches] == [([64.0], 3600)]
    assert [(r.reason, r.count) for r in result.rejects] == [(Reason.BAD_TIME, 2)]


def test_a_sleep_session_without_a_readable_end_is_one_reject() -> None:
    session = {"sleep": {"interval": {"startTime": "2026-11-02T04:10:00Z", "endTime": 5},
                         "summary": {"minutesAsleep": "400"},
                         "stages": [{"type": "LIGHT", "startTime": "2026-11-02T04:10:00Z", "duration": "60s"}]}}
    result = normalize(google_page("sleep", [session]), RID, secret=SECRET)
    assert result.batches == [] and [(r.reason, r.count) for r in result.rejects] == [(Reason.BAD_TIME, 1)]

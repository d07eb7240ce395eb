from __future__ import annotations

import dataclasses
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


# ----------------------------------------------------------------------------- documented shapes
def _civil(date_: tuple[int, int, int], hours: int = 0, minutes: int = 0) -> dict[str, object]:
    return {"date": dict(zip(("year", "month", "day"), date_, strict=True)),
            "time": {k: v for k, v in (("hours", hours), ("minutes", minutes)) if v}}


def test_civil_times_are_not_read_and_a_missing_offset_is_utc() -> None:
    def hr(time: str, civil: dict[str, object], offset: str | None) -> dict[str, object]:
        sample: dict[str, object] = {"physicalTime": time, "civilTime": civil}
        if offset is not None:
            sample["utcOffset"] = offset
        return {"heartRate": {"beatsPerMinute": "60", "sampleTime": sample}}

    points = [hr("2026-10-01T04:00:00Z", _civil((2026, 10, 1)), "-14400s"),
              hr("2026-10-01T02:00:00Z", _civil((2026, 10, 1), 2), None)]  # proto3 leaves a zero offset out
    result = normalize(google_page("heart-rate", points), RID, secret=SECRET)
    assert sorted((b.local_date, b.utc_offset_s, b.timestamps[0]) for b in result.batches) == [
        ("2026-10-01", -14400, _utc("2026-10-01T04:00:00")), ("2026-10-01", 0, _utc("2026-10-01T02:00:00"))]


def test_mixed_fractional_seconds_and_newest_first_points() -> None:
    times = ["2026-10-01T12:00:03.123456789Z", "2026-10-01T12:00:02Z", "2026-10-01T12:00:01.5Z",
             "2026-10-01T12:00:00.000Z"]  # newest first, as the API lists them
    points = [{"heartRate": {"beatsPerMinute": str(70 + i), "sampleTime": {"physicalTime": t, "utcOffset": "0s"}}}
              for i, t in enumerate(times)]
    batch, = normalize(google_page("heart-rate", points), RID, secret=SECRET).batches
    base = _utc("2026-10-01T12:00:00")
    assert batch.timestamps == [base, base + 1, base + 2, base + 3]  # in time order, kept to the second
    assert batch.values == [73.0, 72.0, 71.0, 70.0]


def test_a_page_zone_that_does_not_exist_makes_a_resting_page_unusable() -> None:
    points = [{"dailyRestingHeartRate": {"beatsPerMinute": "58", "date": {"year": 2026, "month": 2, "day": 3}}}]
    page = dataclasses.replace(google_page("daily-resting-heart-rate", points), timezone="Mars/Olympus")
    with pytest.raises(DecodeError) as info:
        normalize(page, RID, secret=SECRET)
    assert (info.value.reason, info.value.field) == (Reason.BAD_FIELD, "timezone")


# ----------------------------------------------------------------------------- sleep under v4
def _session(start: str, end: str, *, period: str | None = None, metadata: dict[str, object] | None = None,
             kind: str = "STAGES", name: str = "x", stages: list[dict[str, object]] | None = None,
             summary: dict[str, object] | None = None) -> dict[str, object]:
    stated = dict(summary or {})
    if period is not None:
        stated["minutesInSleepPeriod"] = period
    return {"name": f"users/me/dataTypes/sleep/dataPoints/{name}", "sleep": {
        "type": kind, "metadata": metadata or {}, "summary": stated,
        "interval": {"startTime": start, "endTime": end, "startUtcOffset": "-18000s", "endUtcOffset": "-18000s"},
        "stages": stages if stages is not None else [{"type": "LIGHT", "startTime": start, "endTime": end}]}}


def _main_by_log(points: list[dict[str, object]]) -> dict[str, bool]:
    result = normalize(google_page("sleep", points), RID, secret=SECRET)
    return {str(b.attributes["log_id"]): bool(b.attributes["is_main_sleep"]) for b in result.batches}


def test_the_main_sleep_is_the_longest_non_nap_session_of_its_end_date() -> None:
    points = [  # all end on 2026-11-03 local (UTC-5), newest first
        _session("2026-11-03T19:00:00Z", "2026-11-04T03:00:00Z", period="480", metadata={"nap": True}, name="nap"),
        _session("2026-11-03T14:00:00Z", "2026-11-03T15:30:00Z", name="doze"),  # 90 min from the interval
        _session("2026-11-03T04:00:00Z", "2026-11-03T11:00:00Z", period="420", name="night"),
        _session("2026-11-02T06:00:00Z", "2026-11-02T07:00:00Z", metadata={"nap": True}, name="only-nap"),
    ]
    # the nap is longest but a nap; "only-nap" ends on the 2nd, where nothing else is: no main sleep there
    assert _main_by_log(points) == {"nap": False, "doze": False, "night": True, "only-nap": False}


def test_without_a_stated_period_the_interval_decides_and_a_tie_goes_to_the_earlier_start() -> None:
    points = [_session("2026-11-03T13:00:00Z", "2026-11-03T15:00:00Z", name="later"),
              _session("2026-11-03T06:00:00Z", "2026-11-03T08:00:00Z", name="earlier"),
              _session("2026-11-03T08:30:00Z", "2026-11-03T09:30:00Z", period="110", name="stated")]
    assert _main_by_log(points) == {"later": False, "earlier": True, "stated": False}


def test_a_date_whose_sessions_still_carry_main_sleep_keeps_the_vendors_flags() -> None:
    points = [_session("2026-11-03T04:00:00Z", "2026-11-03T11:00:00Z", period="420", name="long",
                       metadata={"mainSleep": False}),
              _session("2026-11-03T14:00:00Z", "2026-11-03T15:00:00Z", name="short", metadata={"mainSleep": True})]
    assert _main_by_log(points) == {"long": False, "short": True}


def test_stage_types_map_to_the_fitbit_levels_of_the_session_type() -> None:
    def stage(kind: str, start: str, end: str) -> dict[str, object]:
        return {"type": kind, "startTime": start, "endTime": end}

    stages = [stage("AWAKE", "2026-11-03T04:00:00Z", "2026-11-03T04:10:00Z"),
              stage("LIGHT", "2026-11-03T04:10:00Z", "2026-11-03T05:00:00Z"),
              stage("DEEP", "2026-11-03T05:00:00Z", "2026-11-03T06:00:00Z"),
              stage("REM", "2026-11-03T06:00:00Z", "2026-11-03T06:20:00Z"),
              {"startTime": "2026-11-03T06:20:00Z", "endTime": "2026-11-03T06:30:00Z"}]  # no type: "unknown"
    summary = {"stagesSummary": [{"type": "AWAKE", "minutes": "10"}, {"type": "DEEP", "minutes": "60"}]}
    night = _session("2026-11-03T04:00:00Z", "2026-11-03T06:30:00Z", stages=stages, summary=summary)
    classic = _session("2026-06-10T05:00:00Z", "2026-06-10T06:00:00Z", kind="CLASSIC", summary={
        "stagesSummary": [{"type": "AWAKE", "minutes": "5"}, {"type": "RESTLESS", "minutes": "5"}]}, stages=[
        stage("ASLEEP", "2026-06-10T05:00:00Z", "2026-06-10T05:50:00Z"),
        stage("RESTLESS", "2026-06-10T05:50:00Z", "2026-06-10T05:55:00Z"),
        stage("AWAKE", "2026-06-10T05:55:00Z", "2026-06-10T06:00:00Z")])
    result = normalize(google_page("sleep", [night, classic]), RID, secret=SECRET)
    levels = {str(b.attributes["type"]): b.labels for b in result.batches if b.metric is Metric.SLEEP_STAGE}
    assert levels == {"stages": ["wake", "light", "deep", "rem", "unknown"],
                      "classic": ["asleep", "restless", "awake"]}
    figures = {str(b.attributes["type"]): b.labels for b in result.batches if b.metric is Metric.VENDOR_SLEEP}
    assert figures == {"stages": ["stage.wake.minutes", "stage.deep.minutes"],
                       "classic": ["stage.awake.minutes", "stage.restless.minutes"]}


def test_processed_flag_log_id_and_stage_offsets() -> None:
    unprocessed = _session("2026-11-03T04:00:00Z", "2026-11-03T05:00:00Z", name="abc123",
                           metadata={"processed": False, "nap": False})
    done = _session("2026-11-04T04:00:00Z", "2026-11-04T05:00:00Z", name="def456")
    result = normalize(google_page("sleep", [unprocessed, done]), RID, secret=SECRET)
    stages = {b.local_date: b for b in result.batches if b.metric is Metric.SLEEP_STAGE}
    assert {d: (b.attributes["processed"], b.attributes["log_id"]) for d, b in stages.items()} == {
        "2026-11-03": (False, "abc123"), "2026-11-04": (True, "def456")}  # absent: processed
    # the stages carry no offset of their own: they take their session's, not UTC
    assert {b.utc_offset_s for b in result.batches} == {-18000}
    assert all(b.attributes["processed"] is (b.local_date != "2026-11-03") for b in result.batches)

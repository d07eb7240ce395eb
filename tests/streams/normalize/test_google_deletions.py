"""DELETE notification pages → deletion batches: metrics per data type, candidate days, clocks."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from models.errors import DecodeError
from models.providers import Provider
from models.raw import RawPage
from models.samples import Metric, SampleBatch
from streams.normalize.google_deletions import GoogleDeletions

NORMALIZER = GoogleDeletions()


def _page(body: object) -> RawPage:
    return RawPage(provider=Provider.GOOGLE_HEALTH, data_type="deletions", date=None, body=orjson.dumps(body),
                   origin="webhook", fetched_at=1.0, request_id="w-1")


def _epoch(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def test_a_physical_interval_withdraws_its_utc_span_on_every_date_it_can_fall_on() -> None:
    page = _page({"operation": "DELETE", "dataType": "steps", "intervals": [{
        "physicalTimeInterval": {"startTime": "2026-11-02T10:00:00Z", "endTime": "2026-11-02T11:30:00Z"},
        "civilIso8601TimeInterval": {"startTime": "2026-11-02T05:00:00", "endTime": "2026-11-02T06:30:00"}}]})
    batches = NORMALIZER.normalize_page(page, "R1", secret=b"s").batches
    assert [b.local_date for b in batches] == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert {(b.metric, b.research_id, len(b), b.attributes["clock"]) for b in batches} == {
        (Metric.STEPS, "R1", 0, "utc")}
    assert all(b.deleted == [[_epoch("2026-11-02T10:00:00"), _epoch("2026-11-02T11:30:00")]] for b in batches)
    assert SampleBatch.from_bytes(batches[0].to_bytes()) == batches[0]  # survives the topic


def test_a_civil_interval_alone_withdraws_local_wall_clock_times_on_its_own_dates() -> None:
    page = _page({"operation": "DELETE", "dataType": "sleep", "intervals": [{
        "civilIso8601TimeInterval": {"startTime": "2026-11-01T22:00:00", "endTime": "2026-11-02T07:00:00"}}]})
    batches = NORMALIZER.normalize_page(page, "R1", secret=b"s").batches
    assert [(b.metric, b.local_date) for b in batches] == [
        (Metric.SLEEP_STAGE, "2026-11-01"), (Metric.SLEEP_STAGE, "2026-11-02"),
        (Metric.VENDOR_SLEEP, "2026-11-01"), (Metric.VENDOR_SLEEP, "2026-11-02")]
    assert {b.attributes["clock"] for b in batches} == {"local"}
    assert batches[0].deleted == [[_epoch("2026-11-01T22:00:00"), _epoch("2026-11-02T07:00:00")]]


def test_data_types_we_do_not_read_delete_nothing() -> None:
    page = _page({"operation": "DELETE", "dataType": "weight", "intervals": [{
        "physicalTimeInterval": {"startTime": "2026-11-02T10:00:00Z", "endTime": "2026-11-02T11:00:00Z"}}]})
    assert NORMALIZER.normalize_page(page, "R1", secret=b"s").batches == []


@pytest.mark.parametrize("body", [
    {"operation": "UPSERT", "dataType": "steps", "intervals": []},
    {"operation": "DELETE", "intervals": []},
    {"operation": "DELETE", "dataType": "steps", "intervals": [{"physicalTimeInterval": {"startTime": "soon"}}]},
    {"operation": "DELETE", "dataType": "steps", "intervals": [{"physicalTimeInterval": {
        "startTime": "2026-11-02T11:00:00Z", "endTime": "2026-11-02T10:00:00Z"}}]},
], ids=["not-a-delete", "no-type", "no-times", "backwards"])
def test_an_unusable_page_is_a_decode_error(body: object) -> None:
    with pytest.raises(DecodeError):
        NORMALIZER.normalize_page(_page(body), "R1", secret=b"s")


@pytest.mark.parametrize("interval, dates", [
    ({"physicalTimeInterval": {"startTime": "2026-11-02T06:00:00Z", "endTime": "2026-11-03T06:00:00Z"},
      "civilIso8601TimeInterval": {"startTime": "2026-11-02T00:00:00", "endTime": "2026-11-03T00:00:00"}},
     ["2026-11-02"]),
    ({"physicalTimeInterval": {"startTime": "2026-11-02T06:00:00Z", "endTime": "2026-11-03T06:00:00Z"}},
     ["2026-11-02"]),  # Chicago's 2 November, no civil part: its middle is on its own date in UTC
    ({"physicalTimeInterval": {"startTime": "2026-11-01T15:00:00Z", "endTime": "2026-11-02T15:00:00Z"}},
     ["2026-11-02"]),  # Tokyo's 2 November
], ids=["civil", "west", "east"])
def test_a_daily_type_withdraws_its_figure_of_the_dates_it_names(interval: object, dates: list[str]) -> None:
    page = _page({"operation": "DELETE", "dataType": "daily-resting-heart-rate", "intervals": [interval]})
    batches = NORMALIZER.normalize_page(page, "R1", secret=b"s").batches
    assert [b.local_date for b in batches] == dates
    assert all(b.metric is Metric.VENDOR_DAILY and b.attributes == {"clock": "day", "label": "resting_heart_rate"}
               for b in batches)

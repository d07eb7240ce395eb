from __future__ import annotations

import orjson
import pytest

from models.dead_letter import DeadLetter
from models.errors import DecodeError, Reason
from models.fetch import FetchReason, FetchRequest
from models.participants import ApiGeneration, LinkStatus, ParticipantLink
from models.providers import Provider
from models.raw import RawPage
from models.samples import Metric, Resolution, SampleBatch, Unit


def _page(**changes: object) -> RawPage:
    values: dict[str, object] = {"provider": Provider.FITBIT, "data_type": "sleep", "date": "2026-11-01",
                                 "body": b'{"sleep": []}\n\x00binary', "timezone": "Europe/Paris",
                                 "fetched_at": 12.5, "request_id": "r1"}
    values.update(changes)
    return RawPage(**values)  # type: ignore[arg-type]


def test_raw_page_round_trips_the_body_byte_for_byte() -> None:
    page = _page()
    encoded = page.to_bytes()
    assert encoded.endswith(page.body)
    assert RawPage.from_bytes(encoded) == page


@pytest.mark.parametrize(("encoded", "field", "reason"), [
    (b"no newline", None, Reason.BAD_ENVELOPE),
    (b'{"v": 2, "provider": "fitbit"}\n{}', "v", Reason.UNSUPPORTED_SCHEMA),
    (b'{"v": 1, "provider": "garmin", "data_type": "x"}\n{}', "provider", Reason.BAD_FIELD),
    (b'{"v": 1, "provider": "fitbit"}\n{}', "data_type", Reason.MISSING_FIELD),
    (b'{"v": 1, "provider": "fitbit", "data_type": "weight"}\n{}', "data_type", Reason.UNKNOWN_DATA_TYPE),
    (b'{"v": 1, "provider": "fitbit", "data_type": "sleep", "date": "yesterday"}\n{}', "date", Reason.BAD_FIELD),
])
def test_raw_page_validation_names_the_field(encoded: bytes, field: str | None, reason: Reason) -> None:
    with pytest.raises(DecodeError) as info:
        RawPage.from_bytes(encoded)
    assert (info.value.field, info.value.reason) == (field, reason)


def _batch(**changes: object) -> SampleBatch:
    values: dict[str, object] = {
        "research_id": "R1", "metric": Metric.SLEEP_STAGE, "unit": Unit.SECONDS, "resolution": Resolution.SEGMENT,
        "source": Provider.GOOGLE_HEALTH, "utc_offset_s": -18000, "local_date": "2026-11-02",
        "timestamps": [1, 2], "values": [30.0, 60.0], "labels": ["light", "deep"], "durations": [30, 60],
        "attributes": {"is_main_sleep": True}}
    values.update(changes)
    return SampleBatch(**values)  # type: ignore[arg-type]


def test_sample_batch_round_trip_and_frame() -> None:
    batch = _batch()
    assert SampleBatch.from_bytes(batch.to_bytes()) == batch
    frame = batch.to_frame()
    assert frame.columns == ["ts", "value", "label", "duration"] and frame.height == 2


@pytest.mark.parametrize(("changes", "field"), [
    ({"values": [1.0]}, "values"), ({"labels": ["a"]}, "labels"), ({"utc_offset_s": 90000}, "utc_offset_s"),
])
def test_sample_batch_validation_names_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(DecodeError) as info:
        _batch(**changes)
    assert info.value.field == field


def test_sample_batch_decode_rejects_unknown_metric() -> None:
    record = orjson.loads(_batch().to_bytes())
    record["metric"] = "weight"
    with pytest.raises(DecodeError, match="metric"):
        SampleBatch.from_bytes(orjson.dumps(record))


def test_other_records_round_trip() -> None:
    letter = DeadLetter(stage="normalize", reason=Reason.NOT_JSON, detail="d", key=b"R1", original=b"\x00\x01",
                        topic="t", count=3, at=1.0)
    assert DeadLetter.from_bytes(letter.to_bytes()) == letter
    fetch = FetchRequest(provider=Provider.FITBIT, data_type="sleep", start_date="2026-11-01",
                         end_date="2026-11-03", reason=FetchReason.BACKFILL, requested_at=2.0)
    assert FetchRequest.from_bytes(fetch.to_bytes()) == fetch
    link = ParticipantLink(research_id="R1", provider=Provider.GOOGLE_HEALTH,
                           api_generation=ApiGeneration.GOOGLE_HEALTH_V4, status=LinkStatus.LINKED, key_id="k1",
                           linked_at=3.0)
    assert ParticipantLink.from_bytes(link.to_bytes()) == link
    assert b"token" not in link.to_bytes()
    with pytest.raises(DecodeError) as info:
        FetchRequest(provider=Provider.FITBIT, data_type="sleep", start_date="2026-11-03", end_date="2026-11-01",
                     reason=FetchReason.POLL)
    assert info.value.field == "end_date"


def test_daily_summary_round_trip_and_validation() -> None:
    from models.daily import DailySummary

    summary = DailySummary(research_id="R1", local_date="2026-11-01", revision=3, steps=8123, vendor_steps=8200,
                           hr_min=48.0, zone_minutes={"Fat Burn": 40}, valid_day=True)
    assert DailySummary.from_bytes(summary.to_bytes()) == summary
    assert summary.key == "R1|2026-11-01"
    record = orjson.loads(summary.to_bytes())
    record["stepz"] = 1
    with pytest.raises(DecodeError) as info:
        DailySummary.from_bytes(orjson.dumps(record))
    assert info.value.field == "stepz"
    with pytest.raises(DecodeError) as info:
        DailySummary(research_id="R1", local_date="2026-11-01", revision=0)
    assert info.value.field == "revision"

"""PurgeMarker (models/purge.py): the record that carries a purge down ``samples`` → ``intraday``."""

from __future__ import annotations

import orjson
import pytest

from models.errors import DecodeError, Reason
from models.providers import Provider
from models.purge import PurgeMarker, is_purge_marker
from models.samples import Metric, Resolution, SampleBatch, Unit


def _batch(research_id: str = "R0001") -> SampleBatch:
    return SampleBatch(research_id=research_id, metric=Metric.STEPS, unit=Unit.STEPS, resolution=Resolution.MINUTE,
                       source=Provider.FITBIT, utc_offset_s=3600, local_date="2026-11-01",
                       timestamps=[1_793_487_600, 1_793_487_660], values=[12.0, 30.0])


def test_round_trip_keeps_research_id_and_dates_in_order() -> None:
    marker = PurgeMarker("R0001", ("2026-11-02", "2026-11-01"))
    decoded = PurgeMarker.from_bytes(marker.to_bytes())
    assert decoded == marker
    assert decoded.dates == ("2026-11-02", "2026-11-01")
    assert orjson.loads(marker.to_bytes()) == {"purge_marker": 1, "research_id": "R0001",
                                               "dates": ["2026-11-02", "2026-11-01"]}


def test_round_trip_without_dates() -> None:
    marker = PurgeMarker("R0002")
    assert marker.dates == ()
    assert PurgeMarker.from_bytes(marker.to_bytes()) == marker
    assert PurgeMarker.from_bytes(b'{"purge_marker":1,"research_id":"R0002"}') == marker


def test_is_purge_marker_tells_a_marker_from_a_sample_batch() -> None:
    assert is_purge_marker(PurgeMarker("R0001", ("2026-11-01",)).to_bytes())
    assert is_purge_marker(PurgeMarker("R0001").to_bytes())
    batch_bytes = _batch().to_bytes()
    assert SampleBatch.from_bytes(batch_bytes) == _batch()  # a real batch, decodable as one
    assert not is_purge_marker(batch_bytes)


@pytest.mark.parametrize("value", [
    None, b"", b"{}", b"null", b'{"research_id":"R0001","purge_marker":1}', b'{"purge":1,"research_id":"R1"}',
    b'[{"purge_marker":1}]', b'{"v":1,"purge_marker":1}',
])
def test_is_purge_marker_is_false_for_none_and_other_json(value: bytes | None) -> None:
    assert is_purge_marker(value) is False


@pytest.mark.parametrize(("data", "reason", "field"), [
    (b'{"purge_marker":1,"research_id":"R1","dates":"2026-11-01"}', Reason.BAD_FIELD, "dates"),
    (b'{"purge_marker":1,"research_id":"R1","dates":[20261101]}', Reason.BAD_FIELD, "dates"),
    (b'{"purge_marker":1,"research_id":"R1","dates":["2026-11-01",null]}', Reason.BAD_FIELD, "dates"),
    (b'{"purge_marker":1,"research_id":"R1","dates":{"2026-11-01":1}}', Reason.BAD_FIELD, "dates"),
    (b'{"purge_marker":1,"dates":[]}', Reason.MISSING_FIELD, "research_id"),
    (b'{"purge_marker":1,"research_id":"","dates":[]}', Reason.BAD_FIELD, "research_id"),
])
def test_bad_fields_raise_decode_error(data: bytes, reason: Reason, field: str) -> None:
    with pytest.raises(DecodeError) as info:
        PurgeMarker.from_bytes(data)
    assert info.value.reason is reason
    assert info.value.field == field


@pytest.mark.parametrize(("data", "reason"), [(b"{nope", Reason.NOT_JSON), (b"[]", Reason.BAD_ENVELOPE)])
def test_not_an_object_raises_decode_error(data: bytes, reason: Reason) -> None:
    with pytest.raises(DecodeError) as info:
        PurgeMarker.from_bytes(data)
    assert info.value.reason is reason

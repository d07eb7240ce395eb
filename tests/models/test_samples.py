"""SampleBatch (models/samples.py): columns of one metric for one participant-day."""

from __future__ import annotations

import orjson
import pytest

from models.errors import DecodeError
from models.providers import Provider
from models.samples import Metric, Resolution, SampleBatch, Unit


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

"""SampleBatch (models/samples.py): columns of one metric for one participant-day."""

from __future__ import annotations

import dataclasses

import orjson
import pytest

from models.errors import DecodeError
from models.providers import Provider
from models.samples import Metric, Resolution, SampleBatch, Unit, deletion_runs


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


def test_deleted_intervals_round_trip_and_are_checked() -> None:
    batch = SampleBatch(research_id="R1", metric=Metric.STEPS, unit=Unit.STEPS, resolution=Resolution.MINUTE,
                        source=Provider.GOOGLE_HEALTH, utc_offset_s=0, local_date="2026-11-02", timestamps=[],
                        values=[], deleted=[[10, 20]])
    assert SampleBatch.from_bytes(batch.to_bytes()) == batch and batch.is_deletion
    assert "deleted" not in SampleBatch.from_dict(batch.to_dict() | {"deleted": None}).to_dict()
    for broken in ([[20, 10]], [[1, 2, 3]], "x", [[1.5, 2]]):
        with pytest.raises(DecodeError, match="start, end"):
            SampleBatch.from_dict(batch.to_dict() | {"deleted": broken})


def test_deletion_runs_keep_arrival_order() -> None:
    add = SampleBatch(research_id="R1", metric=Metric.STEPS, unit=Unit.STEPS, resolution=Resolution.MINUTE,
                      source=Provider.FITBIT, utc_offset_s=0, local_date="2026-11-02", timestamps=[1], values=[2.0])
    delete = dataclasses.replace(add, timestamps=[], values=[], deleted=[[0, 5]])
    assert deletion_runs([add, add, delete, delete, add]) == [(False, [0, 1]), (True, [2, 3]), (False, [4])]
    assert deletion_runs([]) == []

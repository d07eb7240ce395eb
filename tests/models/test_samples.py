"""SampleBatch (models/samples.py): columns of one metric for one participant-day."""

from __future__ import annotations

import dataclasses

import orjson
import pytest

from models.errors import DecodeError, Reason
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


@pytest.mark.parametrize(("changes", "field"), [
    ({"labels": 7}, "labels"),  # audit finding 10: "labels is a number" escaped the decode as a TypeError
    ({"timestamps": ["1", "2"]}, "timestamps[0]"),  # ... and string timestamps failed where Polars wrote them
    ({"timestamps": [1, None]}, "timestamps[1]"),
    ({"timestamps": [1, True]}, "timestamps[1]"),
    ({"timestamps": [1, 1 << 63]}, "timestamps[1]"),  # beyond Int64
    ({"values": ["30", 60.0]}, "values[0]"),
    ({"labels": ["light", 3]}, "labels[1]"),
    ({"durations": "30,60"}, "durations"),
    ({"durations": [30, 1.5]}, "durations[1]"),
    ({"rejected_timestamps": ["1"]}, "rejected_timestamps[0]"),
    ({"rejected_timestamps": 5}, "rejected_timestamps"),
    ({"attributes": ["is_main_sleep"]}, "attributes"),
    ({"attributes": {"log": {"nested": 1}}}, "attributes"),
    ({"local_date": "2026-13-45"}, "local_date"),
])
def test_sample_batch_decode_checks_element_types_and_shapes(changes: dict[str, object], field: str) -> None:
    record = orjson.loads(_batch().to_bytes()) | changes
    with pytest.raises(DecodeError) as info:
        SampleBatch.from_bytes(orjson.dumps(record))
    assert info.value.field == field
    assert info.value.reason is Reason.BAD_FIELD


def test_sample_batch_decode_keeps_the_nulls_the_pipeline_writes() -> None:
    # a device without a battery level (a null value); a segment whose duration the vendor left out
    batch = _batch(values=[None, 60.0], durations=[None, 60], attributes={"log_id": None, "n": 1.5})
    assert SampleBatch.from_bytes(batch.to_bytes()) == batch

"""DailySummary (models/daily.py): one participant-day, keyed ``research_id|local_date``."""

from __future__ import annotations

import orjson
import pytest

from models.daily import DailySummary
from models.errors import DecodeError, Reason


def test_daily_summary_round_trip_and_validation() -> None:
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


@pytest.mark.parametrize(("changes", "field"), [
    ({"steps": "8123"}, "steps"),  # audit finding 10: failed in the sink's write (str to i64)
    ({"zone_minutes": [40]}, "zone_minutes"),  # ... and this one with "'list' object has no attribute 'get'"
    ({"zone_minutes": {"Fat Burn": "40"}}, "zone_minutes.Fat Burn"),
    ({"sleep_stage_minutes": {"deep": 1.5}}, "sleep_stage_minutes.deep"),
    ({"steps": None}, "steps"),
    ({"steps": 1.5}, "steps"),
    ({"revision": True}, "revision"),
    ({"valid_day": 1}, "valid_day"),
    ({"hr_min": "48"}, "hr_min"),
    ({"vendor_steps": [1]}, "vendor_steps"),
    ({"first_sample_at": 1 << 63}, "first_sample_at"),  # over Int64, as orjson reads a u64
    ({"source": 3}, "source"),
    ({"local_date": 20261101}, "local_date"),
])
def test_daily_summary_decode_checks_every_field_type(changes: dict[str, object], field: str) -> None:
    record = orjson.loads(DailySummary(research_id="R1", local_date="2026-11-01", revision=1).to_bytes()) | changes
    with pytest.raises(DecodeError) as info:
        DailySummary.from_bytes(orjson.dumps(record))
    assert info.value.field == field
    assert info.value.reason is Reason.BAD_FIELD


def test_daily_summary_decode_takes_integers_for_floats_and_nulls_where_a_day_may_lack_a_figure() -> None:
    record = orjson.loads(DailySummary(research_id="R1", local_date="2026-11-01", revision=1).to_bytes())
    decoded = DailySummary.from_bytes(orjson.dumps(record | {"vendor_resting_hr": 61, "hr_min": None}))
    assert decoded.vendor_resting_hr == 61 and decoded.hr_min is None

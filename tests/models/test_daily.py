"""DailySummary (models/daily.py): one participant-day, keyed ``research_id|local_date``."""

from __future__ import annotations

import orjson
import pytest

from models.daily import DailySummary
from models.errors import DecodeError


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

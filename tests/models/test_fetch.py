"""FetchRequest (models/fetch.py): what the scheduler asks a connector to fetch."""

from __future__ import annotations

import pytest

from models.errors import DecodeError
from models.fetch import FetchReason, FetchRequest
from models.providers import Provider


def test_fetch_request_round_trips() -> None:
    fetch = FetchRequest(provider=Provider.FITBIT, data_type="sleep", start_date="2026-11-01",
                         end_date="2026-11-03", reason=FetchReason.BACKFILL, requested_at=2.0)
    assert FetchRequest.from_bytes(fetch.to_bytes()) == fetch


def test_fetch_request_ending_before_it_starts_names_end_date() -> None:
    with pytest.raises(DecodeError) as info:
        FetchRequest(provider=Provider.FITBIT, data_type="sleep", start_date="2026-11-03", end_date="2026-11-01",
                     reason=FetchReason.POLL)
    assert info.value.field == "end_date"

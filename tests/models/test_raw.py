"""RawPage (models/raw.py): a metadata line, then the vendor's body byte for byte."""

from __future__ import annotations

import pytest

from models.errors import DecodeError, Reason
from models.providers import Provider
from models.raw import RawPage


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

from __future__ import annotations

import logging

import pytest

from runtime.logging import RedactingFilter, redact


@pytest.mark.parametrize(
    ("text", "leaked"),
    [
        ("linked P1234567890 to fitbit", "1234567890"),
        ("Authorization: Bearer eyJhbGciOi.abc-def_ghi", "eyJhbGciOi"),
        ('{"access_token": "tok-123", "refresh_token":"ref-456"}', "tok-123"),
        ("refresh_token=ref-456&client_secret=shh", "ref-456"),
        ("code_verifier=verif789", "verif789"),
        ("purged R0123456789abcdef0123 from the dataset", "0123456789abcdef0123"),
    ],
)
def test_identifiers_and_tokens_are_redacted(text: str, leaked: str) -> None:
    assert leaked not in redact(text)


def test_plain_coordinates_are_left_alone() -> None:
    text = "batch of 120 events from wearables.raw.fitbit[3]@4521"
    assert redact(text) == text


def test_filter_rewrites_formatted_records() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "participant %s linked", ("P1234567890",), None)
    assert RedactingFilter().filter(record)
    assert "1234567890" not in record.getMessage()

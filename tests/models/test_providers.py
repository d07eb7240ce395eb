"""Provider (models/providers.py): the vendors, whose values name raw topics and fill ``src_id``."""

from __future__ import annotations

import pytest

from models.providers import Provider
from models.topics import raw_topic_suffix


def test_the_providers_and_their_values() -> None:
    assert [p.value for p in Provider] == ["fitbit", "google_health"]
    assert Provider("google_health") is Provider.GOOGLE_HEALTH
    assert f"{Provider.FITBIT}" == "fitbit"  # a StrEnum: formats as its value in topic names and rows


def test_each_provider_has_its_raw_topic() -> None:
    assert {raw_topic_suffix(p) for p in Provider} == {"raw.fitbit", "raw.google_health"}


def test_an_unknown_vendor_is_refused() -> None:
    with pytest.raises(ValueError, match="garmin"):
        Provider("garmin")

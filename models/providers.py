"""The wearable vendors we ingest from."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Provider"]


class Provider(StrEnum):
    """A data source. The value is used in topic names (``raw.<provider>``) and as ``src_id``."""

    FITBIT = "fitbit"  # the legacy Fitbit Web API and its JSON archives
    GOOGLE_HEALTH = "google_health"  # the Google Health API v4

"""Vendor pages → canonical SampleBatches: pure, vectorised functions (no Faust, no Kafka)."""

from __future__ import annotations

from models.errors import DecodeError, Reason
from models.providers import Provider
from models.raw import RawPage
from streams.normalize.fitbit_legacy import normalize_fitbit
from streams.normalize.google_health import normalize_google_health
from streams.normalize.result import Normalized, Rejected

__all__ = ["Normalized", "Rejected", "normalize"]


def normalize(page: RawPage, research_id: str, *, secret: bytes) -> Normalized:
    """All samples of one raw page, split into accepted batches and rejects.

    Raises DecodeError (with a reason and the bad field) when the page as a whole is unusable.
    """
    if not research_id:
        raise DecodeError("the record has no key (research_id)", reason=Reason.BAD_KEY)
    if page.provider is Provider.FITBIT:
        return normalize_fitbit(page, research_id, secret=secret)
    return normalize_google_health(page, research_id, secret=secret)

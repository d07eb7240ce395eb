"""Vendor pages → canonical SampleBatches: pure, vectorised functions (no Faust, no Kafka)."""

from __future__ import annotations

from collections.abc import Sequence

from models.errors import DecodeError, Reason
from models.providers import Provider
from models.raw import RawPage
from streams.normalize.fitbit_legacy import (
    INTRADAY_TYPES,
    IntradayPage,
    intraday_batches,
    normalize_fitbit,
    read_intraday,
)
from streams.normalize.google_health import normalize_google_health
from streams.normalize.result import Normalized, Rejected

__all__ = ["Normalized", "Rejected", "normalize", "normalize_pages"]


def normalize(page: RawPage, research_id: str, *, secret: bytes) -> Normalized:
    """All samples of one raw page, split into accepted batches and rejects.

    Raises DecodeError (with a reason and the bad field) when the page as a whole is unusable.
    """
    _check_key(research_id)
    if page.provider is Provider.FITBIT:
        return normalize_fitbit(page, research_id, secret=secret)
    return normalize_google_health(page, research_id, secret=secret)


def normalize_pages(pages: Sequence[tuple[RawPage, str]], *, secret: bytes) -> list[Normalized | DecodeError]:
    """``normalize`` for many ``(page, research_id)`` pairs: each page's result, or the
    DecodeError that makes it unusable. Results equal those of pages one at a time.

    The bulk of the volume (intraday pages) is read page by page in Python, then converted,
    validated and cut in one vectorised pass: per-page Polars calls cost ~100 µs each, more
    than a minute-level page's work.
    """
    results: list[Normalized | DecodeError] = [Normalized()] * len(pages)
    intraday: list[tuple[int, IntradayPage]] = []
    for i, (page, research_id) in enumerate(pages):
        try:
            _check_key(research_id)
            if page.provider is Provider.FITBIT and page.data_type in INTRADAY_TYPES:
                intraday.append((i, read_intraday(page, research_id)))
            else:
                results[i] = normalize(page, research_id, secret=secret)
        except DecodeError as error:
            results[i] = error
    for (i, _), result in zip(intraday, intraday_batches([p for _, p in intraday]), strict=True):
        results[i] = result
    return results


def _check_key(research_id: str) -> None:
    if not research_id:
        raise DecodeError("the record has no key (research_id)", reason=Reason.BAD_KEY)

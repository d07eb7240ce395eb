"""Vendor pages → canonical SampleBatches: pure, vectorised functions (no Faust, no Kafka).

The package's surface: ``normalize`` (one page), ``normalize_pages`` (many, one vectorised pass
per format) and ``REGISTRY``, the normalizer of every ``(provider, data_type)`` we read. The
contract a normalizer meets is in ``base.py``; ``stage.py`` wraps all of it for raw records.

Adding a format: write a ``Normalizer`` in a module of its own, add it to ``REGISTRY`` below
and give ``tests/streams/normalize/samples.py`` a sample page of it; the contract tests
(``tests/streams/normalize/test_contract.py``) then run on it like on every other.
"""

from __future__ import annotations

from collections.abc import Sequence

from models.errors import DecodeError
from models.raw import RawPage
from streams.normalize import fitbit, google_deletions, google_devices, google_health
from streams.normalize.base import Normalized, Normalizer, Registry, Rejected

__all__ = ["REGISTRY", "Normalized", "Normalizer", "Rejected", "normalize", "normalize_pages"]

#: Every normalizer of this package, by ``(provider, data_type)``.
REGISTRY = Registry([*fitbit.NORMALIZERS, *google_health.NORMALIZERS, google_devices.GooglePairedDevices(),
                     google_deletions.GoogleDeletions()])


def normalize(page: RawPage, research_id: str, *, secret: bytes) -> Normalized:
    """All samples of one raw page, split into accepted batches and rejects.

    Raises DecodeError (with a reason and the bad field) when the page as a whole is unusable.
    """
    return REGISTRY.normalize(page, research_id, secret=secret)


def normalize_pages(pages: Sequence[tuple[RawPage, str]], *, secret: bytes) -> list[Normalized | DecodeError]:
    """``normalize`` for many ``(page, research_id)`` pairs: each page's result, or the
    DecodeError that makes it unusable. Results equal those of pages one at a time.

    The bulk of the volume (intraday pages) is read page by page in Python, then converted,
    validated and cut in one vectorised pass: per-page Polars calls cost ~100 µs each, more
    than a minute-level page's work.
    """
    return REGISTRY.normalize_pages(pages, secret=secret)

"""A vendor's own labelled figures as batches: daily figures at local midnight, and figures at
one instant (a sleep log's summary at the log's start).

Shared by every vendor format. ``figures`` are ``(label, value)`` pairs, labels from
``models/labels.py``; a value that is not a number is rejected, alone, with the pair as its original.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import numpy as np
import polars as pl

from streams.normalize.base import Normalized
from streams.normalize.batching import BatchSpec, Originals, cut_batches, cut_page
from streams.normalize.parsing import numbers
from streams.normalize.timeconv import Zone, local_midnight_s, pages_to_utc

__all__ = ["Figures", "daily_figures", "daily_figures_of_pages", "figure_originals", "figures_at"]

Figures = list[tuple[str, Any]]


def daily_figures(figures: Figures, day: date, zone: Zone, spec: BatchSpec) -> Normalized:
    """The vendor's own daily numbers as one labelled batch at the local midnight of ``day``."""
    if not figures:
        return Normalized()
    return daily_figures_of_pages([(figures, day, zone, spec)])[0]


def daily_figures_of_pages(pages: Sequence[tuple[Figures, date, Zone, BatchSpec]]) -> list[Normalized]:
    """``daily_figures`` of many pages (``(figures, day, zone, spec)`` each) in one vectorised pass."""
    if not pages:
        return []
    lengths = np.array([len(figures) for figures, *_ in pages], dtype=np.int64)
    page = np.repeat(np.arange(len(pages)), lengths)
    midnight = pl.Series([local_midnight_s(day) for _, day, _, _ in pages], dtype=pl.Int64)
    local_date = pl.Series([day.isoformat() for _, day, _, _ in pages], dtype=pl.String)
    frame = pl.DataFrame({
        "page": page, "idx": np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths),
        "label": [label for figures, *_ in pages for label, _ in figures],
        # per page, as a page alone would be read (a mixed cohort must not change how a value parses)
        "value": pl.concat([numbers([value for _, value in figures]) for figures, *_ in pages]),
    }).with_columns(naive=pl.lit(midnight).gather(pl.col("page")))
    frame = pages_to_utc(frame, [zone for _, _, zone, _ in pages], ordered_day=False)
    frame = frame.select("page", "idx", "label", "value", "ts", "offset",
                         local_date=pl.lit(local_date).gather(pl.col("page")))
    originals = [figure_originals(figures) for figures, *_ in pages]
    return cut_batches(frame, [spec for *_, spec in pages], originals)


def figures_at(figures: Figures, *, ts: int | None, offset: int | None, local_date: str | None,
               spec: BatchSpec) -> Normalized:
    """Figures that all hold at one instant (UTC ``ts``, ``offset``) and are filed under ``local_date``.

    A null ``ts`` (an unreadable instant) rejects every figure as a bad time.
    """
    if not figures:
        return Normalized()
    frame = pl.DataFrame({
        "idx": range(len(figures)), "label": [f[0] for f in figures], "value": numbers([f[1] for f in figures]),
    }).with_columns(ts=pl.lit(ts, dtype=pl.Int64), offset=pl.lit(offset, dtype=pl.Int64),
                    local_date=pl.lit(local_date, dtype=pl.String))
    return cut_page(frame, spec, original=figure_originals(figures))


def figure_originals(figures: Figures) -> Originals:
    """The originals of rejected figures: each as the one-entry object ``{label: value}``."""
    return lambda rows: [dict([figures[i]]) for i in rows]

"""Helpers shared by the vendor normalizers: JSON loading, lenient number columns, daily figures."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

import numpy as np
import orjson
import polars as pl

from models.errors import DecodeError, Reason
from streams.normalize.result import BatchSpec, Normalized, split_pages
from streams.normalize.timeconv import Zone, pages_to_utc

__all__ = ["as_number", "daily_figures", "daily_figures_of_pages", "load_json", "local_midnight_s", "numbers",
           "parse_duration_s", "parse_iso_date"]

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def load_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise DecodeError(f"body is not JSON ({error.msg} at byte {error.pos})", reason=Reason.NOT_JSON) from None


def as_number(value: Any) -> float | None:
    """A vendor value as a float: numbers, and numeric strings (int64 arrive as strings)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def numbers(values: Sequence[Any]) -> pl.Series:
    """A Float64 series of vendor values; unusable entries become null (rejected later)."""
    try:
        series = pl.Series("value", values, strict=True)
        if series.dtype.is_numeric():
            return series.cast(pl.Float64)
        if series.dtype == pl.String:
            return series.cast(pl.Float64, strict=False)
    except (TypeError, ValueError, pl.exceptions.PolarsError):
        pass
    # Mixed or odd types: only malformed pages get here, so a per-entry pass is acceptable.
    return pl.Series("value", [as_number(v) for v in values], dtype=pl.Float64)


def parse_duration_s(value: Any) -> float | None:
    """A protobuf JSON Duration (``"920.400s"``, ``"-18000s"``) in seconds; None if malformed."""
    if isinstance(value, str) and value.endswith("s"):
        return as_number(value[:-1])
    return None


def parse_iso_date(value: Any, field: str) -> date:
    if isinstance(value, str):
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            pass
    raise DecodeError(f"{value!r:.40} is not a date", reason=Reason.BAD_FIELD, field=field)


def daily_figures(figures: list[tuple[str, Any]], day: date, zone: Zone, spec: BatchSpec) -> Normalized:
    """The vendor's own daily numbers as one labelled batch at the local midnight of ``day``."""
    if not figures:
        return Normalized()
    return daily_figures_of_pages([(figures, day, zone, spec)])[0]


def daily_figures_of_pages(pages: Sequence[tuple[list[tuple[str, Any]], date, Zone, BatchSpec]]) -> list[Normalized]:
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
    originals = [_figure_entries(figures) for figures, *_ in pages]
    return split_pages(frame, [spec for *_, spec in pages], originals)


def _figure_entries(figures: list[tuple[str, Any]]) -> Callable[[Sequence[int]], list[Any]]:
    return lambda rows: [dict([figures[i]]) for i in rows]


def local_midnight_s(day: date) -> int:
    """The local midnight of ``day`` as naive epoch seconds."""
    return (day.toordinal() - _EPOCH_ORDINAL) * 86400

"""Helpers shared by the vendor normalizers: JSON loading, lenient number columns, daily figures."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import orjson
import polars as pl

from models.errors import DecodeError, Reason
from streams.normalize.result import BatchSpec, Normalized, split_into_batches
from streams.normalize.timeconv import Zone, local_to_utc

__all__ = ["as_number", "daily_figures", "load_json", "numbers", "parse_duration_s", "parse_iso_date"]


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
    midnight = pl.lit(datetime(day.year, day.month, day.day))
    utc, offset = local_to_utc(midnight, zone, ordered_day=False)
    frame = pl.DataFrame({
        "idx": list(range(len(figures))),
        "label": [label for label, _ in figures],
        "value": numbers([value for _, value in figures]),
    }).with_columns(ts=utc, offset=offset, local_date=pl.lit(day.isoformat()))
    return split_into_batches(frame, spec, original=lambda rows: [dict([figures[i]]) for i in rows])

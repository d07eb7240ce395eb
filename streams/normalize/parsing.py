"""Reading vendor JSON leniently: the body, numbers that may be strings, dates, durations.

Shared by every vendor format. A page that cannot be read at all raises DecodeError with the
field; a value that cannot be read becomes null and is rejected later, sample by sample.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import orjson
import polars as pl

from models.errors import DecodeError, Reason

__all__ = ["LOCAL_DATETIME", "as_list", "as_mapping", "as_number", "as_text", "json_object", "load_json",
           "local_datetimes", "numbers", "parse_duration_s", "parse_iso_date"]

#: A vendor's local wall-clock datetime without offset (Fitbit ``2026-11-02T23:30:00.000``).
LOCAL_DATETIME = "%Y-%m-%dT%H:%M:%S%.f"


def load_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise DecodeError(f"body is not JSON ({error.msg} at byte {error.pos})", reason=Reason.NOT_JSON) from None


def json_object(body: Any) -> Mapping[str, Any]:
    """``body`` if it is a JSON object; a DecodeError naming ``$`` otherwise."""
    if not isinstance(body, Mapping):
        raise DecodeError(f"expected a JSON object, got {type(body).__name__}", reason=Reason.BAD_FIELD, field="$")
    return body


def as_mapping(value: Any) -> Mapping[str, Any]:
    """``value`` if it is a JSON object, else an empty one (an optional part that is absent or wrong)."""
    return value if isinstance(value, Mapping) else {}


def as_list(value: Any) -> list[Any]:
    """``value`` if it is a JSON list, else an empty one."""
    return value if isinstance(value, list) else []


def as_text(value: Any) -> str | None:
    """A vendor word (a model name, a battery status) as text; None when absent or not a scalar,
    so that no ``"None"`` string reaches the output."""
    return None if value is None or isinstance(value, Mapping | list) else str(value)


def local_datetimes(values: Sequence[Any]) -> pl.Series:
    """A ``start`` column of naive local datetimes (``LOCAL_DATETIME``); null where not one."""
    return pl.Series("start", [v if isinstance(v, str) else None for v in values], dtype=pl.String).str.strptime(
        pl.Datetime("us"), LOCAL_DATETIME, strict=False)


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

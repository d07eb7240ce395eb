"""Small field readers for decoding dicts: each failure names the field (DecodeError)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import orjson

from models.errors import DecodeError, Reason

__all__ = ["INT64_MAX", "INT64_MIN", "Kind", "check_value", "list_of", "load_object", "mapping_of", "opt_str", "req",
           "req_float", "req_int", "req_list", "req_mapping", "req_str"]

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1  # what a Polars Int64 column (and Parquet) holds

#: What the strict checks below accept. Exact types: a bool is not an int here, and a numeric
#: string is not a number (the readers above convert Google's int64 strings; our own records,
#: written by orjson, never carry those, so one in them is a bug to refuse, not to repair).
Kind = Literal["int", "number", "str", "bool"]
_TYPES: dict[str, tuple[type, ...]] = {"int": (int,), "number": (int, float), "str": (str,), "bool": (bool,)}
_NAMES = {"int": "an integer", "number": "a number", "str": "a string", "bool": "a boolean"}


def req(data: Mapping[str, Any], key: str, path: str = "") -> Any:
    if not isinstance(data, Mapping):
        raise DecodeError("expected an object", reason=Reason.BAD_FIELD, field=path or "$")
    if key not in data or data[key] is None:
        raise DecodeError("is missing", reason=Reason.MISSING_FIELD, field=f"{path}{key}")
    return data[key]


def req_str(data: Mapping[str, Any], key: str, path: str = "") -> str:
    value = req(data, key, path)
    if not isinstance(value, str) or not value:
        raise DecodeError(f"expected a non-empty string, got {type(value).__name__}",
                          reason=Reason.BAD_FIELD, field=f"{path}{key}")
    return value


def opt_str(data: Mapping[str, Any], key: str, path: str = "") -> str | None:
    if data.get(key) is None:
        return None
    return req_str(data, key, path)


def req_int(data: Mapping[str, Any], key: str, path: str = "") -> int:
    value = req(data, key, path)
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.lstrip("-").isdigit():  # int64 as string (Google APIs)
            return int(value)
        raise DecodeError(f"expected an integer, got {value!r:.40}", reason=Reason.BAD_FIELD, field=f"{path}{key}")
    return value


def req_float(data: Mapping[str, Any], key: str, path: str = "") -> float:
    value = req(data, key, path)
    if isinstance(value, bool):
        raise DecodeError("expected a number, got a boolean", reason=Reason.BAD_FIELD, field=f"{path}{key}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise DecodeError(f"expected a number, got {value!r:.40}", reason=Reason.BAD_FIELD,
                          field=f"{path}{key}") from None


def req_list(data: Mapping[str, Any], key: str, path: str = "") -> list[Any]:
    value = req(data, key, path)
    if not isinstance(value, list):
        raise DecodeError(f"expected a list, got {type(value).__name__}", reason=Reason.BAD_FIELD,
                          field=f"{path}{key}")
    return value


def req_mapping(data: Mapping[str, Any], key: str, path: str = "") -> Mapping[str, Any]:
    value = req(data, key, path)
    if not isinstance(value, Mapping):
        raise DecodeError(f"expected an object, got {type(value).__name__}", reason=Reason.BAD_FIELD,
                          field=f"{path}{key}")
    return value


def load_object(data: bytes, what: str) -> dict[str, Any]:
    """Decode a JSON object (a record value); DecodeError says which record it was meant to be."""
    try:
        record = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise DecodeError(f"{what} is not JSON", reason=Reason.NOT_JSON) from None
    if not isinstance(record, dict):
        raise DecodeError(f"{what} is not an object", reason=Reason.BAD_ENVELOPE)
    return record


def check_value(value: Any, field: str, kind: Kind, *, nullable: bool = False) -> Any:
    """``value`` if it is of ``kind`` (or None when ``nullable``); else DecodeError naming ``field``."""
    if value is None and nullable:
        return value
    if type(value) not in _TYPES[kind] or (type(value) is int and not INT64_MIN <= value <= INT64_MAX):
        shown = "null" if value is None else f"{type(value).__name__} {value!r:.40}"
        raise DecodeError(f"expected {_NAMES[kind]}, got {shown}", reason=Reason.BAD_FIELD, field=field)
    return value


def list_of(value: Any, field: str, kind: Kind, *, nullable: bool = False) -> list[Any]:
    """``value`` if it is a list of ``kind`` elements (None among them when ``nullable``); else a
    DecodeError naming the field, or the first bad element (``timestamps[3]``).

    One pass over the element types in C-speed ``all()``; the slow path only finds the culprit.
    """
    if not isinstance(value, list):
        shown = "null" if value is None else type(value).__name__
        raise DecodeError(f"expected a list, got {shown}", reason=Reason.BAD_FIELD, field=field)
    allowed = _TYPES[kind] + ((type(None),) if nullable else ())
    ints = [v for v in value if type(v) is int] if kind in ("int", "number") else []
    if all(type(v) in allowed for v in value) and (not ints or (INT64_MIN <= min(ints) and max(ints) <= INT64_MAX)):
        return value
    for position, item in enumerate(value):
        check_value(item, f"{field}[{position}]", kind, nullable=nullable)
    return value  # unreachable: the loop raises


def mapping_of(value: Any, field: str, kind: Kind) -> dict[str, Any]:
    """``value`` if it is an object of ``kind`` values; else DecodeError naming the field or key."""
    if not isinstance(value, dict):
        shown = "null" if value is None else type(value).__name__
        raise DecodeError(f"expected an object, got {shown}", reason=Reason.BAD_FIELD, field=field)
    for key, item in value.items():
        check_value(key, field, "str")
        check_value(item, f"{field}.{key}", kind)
    return value

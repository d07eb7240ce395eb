"""Small field readers for decoding dicts: each failure names the field (DecodeError)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from models.errors import DecodeError, Reason

__all__ = ["load_object", "opt_str", "req", "req_float", "req_int", "req_list", "req_mapping", "req_str"]


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

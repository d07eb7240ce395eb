"""One mapping from a vendor HTTP answer to our typed errors, for both vendors' clients."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from connectors.vendor_errors import (
    AccessRevoked,
    RateLimited,
    TokenExpired,
    VendorError,
    VendorRejected,
    VendorUnavailable,
)
from models.providers import Provider

__all__ = ["error_for", "quota_remaining", "retry_after"]


def retry_after(headers: Mapping[str, str]) -> float:
    """Seconds to wait after a 429: Fitbit's reset header first, then Retry-After, else a minute."""
    for name in ("Fitbit-Rate-Limit-Reset", "Retry-After"):
        value = headers.get(name)
        if value and value.strip().isdigit():
            return float(value)
    return 60.0


def quota_remaining(headers: Mapping[str, str]) -> int | None:
    """Requests left in the vendor's current window, where it says (Fitbit, on every answer)."""
    value = headers.get("Fitbit-Rate-Limit-Remaining")
    return int(value) if value and value.strip().isdigit() else None


def _problem(body: bytes) -> str:
    """The OAuth / API error code in either vendor's error body."""
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ""
    if isinstance(data, dict):
        errors = data.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return str(errors[0].get("errorType", ""))
        error = data.get("error")
        if isinstance(error, str):
            return error
        if isinstance(error, dict):
            return str(error.get("message", ""))
    return ""


def error_for(provider: Provider, status: int, headers: Mapping[str, str], body: bytes) -> VendorError | None:
    """The error a non-2xx answer means, or None for a success."""
    if status < 300:
        return None
    problem = _problem(body)
    message = f"{provider.value} answered {status} {problem}".strip()
    if status == 429:
        return RateLimited(message, provider=provider, retry_after=retry_after(headers))
    if status >= 500:
        return VendorUnavailable(message, provider=provider, status=status)
    if problem == "invalid_client":  # our client credentials are wrong: configuration, not the participant
        return VendorRejected(message + " (check the client id and secret)", provider=provider, status=status)
    if problem == "expired_token":
        return TokenExpired(message, provider=provider, status=status)
    if problem in ("invalid_grant", "invalid_token") or status == 401:
        return AccessRevoked(message, provider=provider, status=status)
    return VendorRejected(message, provider=provider, status=status)

"""What a vendor call can end in, besides a page, and the one mapping from an HTTP answer to it.

The scheduler decides per class:

    WearablesError (models.errors)
    └── VendorError          .provider, .status (None when no answer came)
        ├── RateLimited        429: wait for the reset the headers give (.retry_after), then try again
        ├── TokenExpired       a data call's 401, whatever its body (Google says only UNAUTHENTICATED):
        │                      refresh (once, under the participant's lock) and retry; a 401 again with
        │                      the fresh token is retried with backoff, never taken for a revoked grant
        ├── AccessRevoked      only the token endpoint's documented revocation answers: OAuth's
        │                      ``invalid_grant`` (both vendors), Fitbit's ``invalid_token`` in its
        │                      ``errors`` body; the participant is ``revoked``; stop fetching
        ├── VendorUnavailable  5xx (Google: 503 UNAVAILABLE, 504 DEADLINE_EXCEEDED), timeouts, broken
        │                      connections, a body that is no vendor's answer (an HTML error page), a
        │                      token endpoint's 429: retry with jittered backoff
        ├── ScopeMissing       403 for a scope the participant did not grant (Google
        │                      ACCESS_TOKEN_SCOPE_INSUFFICIENT, Fitbit insufficient_scope): skip that
        │                      data type until they consent again; not retried
        └── VendorRejected     any other 4xx: a bug or a bad request; not retried

``error_for`` turns a non-2xx answer of either vendor's data API into the most specific class,
``token_error_for`` one of its token endpoint (refresh, code exchange): a transient answer of
either never reads as a revoked grant, since that unlinks the participant until they consent again;
``connectors.vendors.base.translate_errors`` turns the HTTP libraries' own exceptions (no answer
at all) into ``VendorUnavailable``. Callers catch only these types.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from connectors.oauth import TokenSet
from connectors.vendors.fitbit_spec import INSUFFICIENT_SCOPE, RATE_LIMIT_REMAINING, RATE_LIMIT_RESET
from connectors.vendors.google_health_spec import INSUFFICIENT_SCOPE_REASON
from models.errors import WearablesError
from models.providers import Provider

__all__ = [
    "AccessRevoked",
    "RateLimited",
    "ScopeMissing",
    "TokenExpired",
    "VendorError",
    "VendorRejected",
    "VendorUnavailable",
    "error_for",
    "quota_remaining",
    "retry_after",
    "token_error_for",
    "token_set",
]


class VendorError(WearablesError):
    def __init__(self, message: str, *, provider: Provider, status: int | None = None) -> None:
        super().__init__(message)
        self.provider = provider
        self.status = status


class RateLimited(VendorError):
    def __init__(self, message: str, *, provider: Provider, retry_after: float) -> None:
        super().__init__(message, provider=provider, status=429)
        self.retry_after = retry_after


class TokenExpired(VendorError):
    pass


class AccessRevoked(VendorError):
    pass


class VendorUnavailable(VendorError):
    pass


class VendorRejected(VendorError):
    pass


class ScopeMissing(VendorError):
    """The grant lacks the scope this call needs: the participant unticked it at consent. Asking
    again gets the same answer until they consent anew, so the data type is set aside, not retried."""


_SCOPE_PROBLEMS = frozenset({INSUFFICIENT_SCOPE, INSUFFICIENT_SCOPE_REASON})
# Fitbit's errorType, and the ErrorInfo reason Google gives an expired access token
# (https://cloud.google.com/dotnet/docs/reference/Google.Api.CommonProtos/latest/Google.Api.ErrorReason)
_EXPIRED_PROBLEMS = frozenset({"expired_token", "ACCESS_TOKEN_EXPIRED"})


_RESET_HEADERS = (RATE_LIMIT_RESET, "Retry-After")


def retry_after(headers: Mapping[str, str]) -> float:
    """Seconds to wait after a 429: Fitbit's reset header first, then Retry-After, else a minute."""
    for name in _RESET_HEADERS:
        value = headers.get(name)
        if value and value.strip().isdigit():
            return float(value)
    return 60.0


def quota_remaining(headers: Mapping[str, str]) -> int | None:
    """Requests left in the vendor's current window, where it says (Fitbit, on every answer)."""
    value = headers.get(RATE_LIMIT_REMAINING)
    return int(value) if value and value.strip().isdigit() else None


def _is_json(body: bytes) -> bool:
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return True


def _problem(body: bytes) -> str:
    """The OAuth / API error code in either vendor's error body: Fitbit's ``errorType``, an
    OAuth ``error``, or in a Google error object its ``google.rpc.ErrorInfo`` reason, else its
    message."""
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
            return _reason(error.get("details")) or str(error.get("message", ""))
    return ""


def _reason(details: Any) -> str:
    for detail in details if isinstance(details, list) else []:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("google.rpc.ErrorInfo"):
            return str(detail.get("reason", ""))
    return ""


def error_for(provider: Provider, status: int, headers: Mapping[str, str], body: bytes) -> VendorError | None:
    """The error a data call's non-2xx answer means, or None for a success.

    A 401 is an access token the vendor did not take, whatever the body says: refresh and try
    again. Whether the grant itself is gone only the token endpoint says (``token_error_for``).
    """
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
    if problem in _SCOPE_PROBLEMS and status in (401, 403):
        return ScopeMissing(message, provider=provider, status=status)
    if status == 401 or problem in _EXPIRED_PROBLEMS:
        return TokenExpired(message, provider=provider, status=status)
    if body.strip() and not _is_json(body):  # an HTML page of a proxy or load balancer, not the API's answer
        return VendorUnavailable(message + " (not the API's error body)", provider=provider, status=status)
    return VendorRejected(message, provider=provider, status=status)


def token_error_for(provider: Provider, status: int, headers: Mapping[str, str], body: bytes) -> VendorError | None:
    """The error a token endpoint's non-2xx answer means, or None for a success.

    Revoked only for the documented revocation answers (docs/vendors.md): ``invalid_grant``
    (RFC 6749 §5.2: the refresh token or code is invalid, expired, revoked or spent), and
    Fitbit's ``invalid_token`` in its ``errors`` body. 5xx, 429 and a body without an OAuth error
    (an HTML page, anything unparsable) are the vendor's trouble: ``VendorUnavailable``.
    """
    if status < 300:
        return None
    problem = _problem(body)
    message = f"{provider.value} token endpoint answered {status} {problem}".strip()
    if status >= 500 or status == 429 or not problem:
        return VendorUnavailable(message, provider=provider, status=status)
    if problem == "invalid_client":
        return VendorRejected(message + " (check the client id and secret)", provider=provider, status=status)
    if problem == "invalid_grant" or (provider is Provider.FITBIT and problem == "invalid_token"):
        return AccessRevoked(message, provider=provider, status=status)
    return VendorRejected(message, provider=provider, status=status)


def token_set(provider: Provider, body: bytes, *, previous_refresh: str | None = None) -> TokenSet:
    """The tokens of a token endpoint's 2xx answer; a body without them (unparsable, an HTML page,
    no access token) is the vendor's trouble, ``VendorUnavailable``, not a revoked grant."""
    try:
        data: Any = orjson.loads(body)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return TokenSet.from_response(data, previous_refresh=previous_refresh)
    except (ValueError, TypeError) as broken:  # orjson.JSONDecodeError is a ValueError
        raise VendorUnavailable(f"{provider.value} token endpoint answered no tokens: {broken}",
                                provider=provider) from None

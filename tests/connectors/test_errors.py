"""One mapping from a vendor's HTTP answer to our error classes, for both vendors' bodies."""

from __future__ import annotations

import orjson
import pytest
from multidict import CIMultiDict

from connectors.errors import (
    AccessRevoked,
    RateLimited,
    ScopeMissing,
    TokenExpired,
    VendorError,
    VendorRejected,
    VendorUnavailable,
    error_for,
    retry_after,
    token_error_for,
    token_set,
)
from models.providers import Provider


def _fitbit(error: str) -> bytes:
    return orjson.dumps({"errors": [{"errorType": error, "message": "m"}], "success": False})


def _google(code: int, status: str, reason: str | None = None) -> bytes:
    error: dict[str, object] = {"code": code, "status": status, "message": "m"}
    if reason:
        error["details"] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason,
                             "domain": "googleapis.com", "metadata": {"service": "health.googleapis.com"}}]
    return orjson.dumps({"error": error})


@pytest.mark.parametrize(("status", "body", "expected"), [
    (200, b"{}", None),
    (429, b"", RateLimited),
    (500, b"not json", VendorUnavailable),
    (503, orjson.dumps({"error": {"code": 503, "status": "UNAVAILABLE"}}), VendorUnavailable),
    (401, _fitbit("expired_token"), TokenExpired),
    (401, orjson.dumps({"error": {"code": 401, "message": "expired_token"}}), TokenExpired),
    # a data call's 401 is an access token not taken, whatever the body: refresh, never revoked
    (401, _fitbit("invalid_token"), TokenExpired),
    (401, _google(401, "UNAUTHENTICATED"), TokenExpired),  # what Google answers an expired token
    (401, b"<html><body>Unauthorized</body></html>", TokenExpired),
    (401, b"", TokenExpired),
    (400, orjson.dumps({"error": "invalid_grant"}), VendorRejected),  # only a token endpoint revokes
    (403, b"<html><body>Forbidden</body></html>", VendorUnavailable),  # a proxy's page, not the API
    (502, b"<html><body>Bad Gateway</body></html>", VendorUnavailable),
    (401, orjson.dumps({"error": "invalid_client"}), VendorRejected),
    (400, _fitbit("validation"), VendorRejected),
    (404, b"", VendorRejected),
    # Google's transient errors, retried like every 5xx (docs/vendors.md, "Rate limits")
    (503, _google(503, "UNAVAILABLE"), VendorUnavailable),
    (504, _google(504, "DEADLINE_EXCEEDED"), VendorUnavailable),
    (429, _google(429, "RESOURCE_EXHAUSTED", "RATE_LIMIT_EXCEEDED"), RateLimited),
    # a scope the participant did not grant: Google's ErrorInfo reason, Fitbit's errorType
    (403, _google(403, "PERMISSION_DENIED", "ACCESS_TOKEN_SCOPE_INSUFFICIENT"), ScopeMissing),
    (403, _fitbit("insufficient_scope"), ScopeMissing),
    (401, _fitbit("insufficient_scope"), ScopeMissing),
    (403, _google(403, "PERMISSION_DENIED"), VendorRejected),  # forbidden for another reason: not a scope
    (403, _fitbit("insufficient_permissions"), VendorRejected),  # an app not allowed intraday: not the participant
    (401, _google(401, "UNAUTHENTICATED", "ACCESS_TOKEN_EXPIRED"), TokenExpired),
    (400, _google(400, "INVALID_ARGUMENT", "INVALID_DATA_POINT_FILTER_DATA_TYPE_MEMBER"), VendorRejected),
])
def test_error_for(status: int, body: bytes, expected: type[VendorError] | None) -> None:
    error = error_for(Provider.FITBIT, status, {}, body)
    assert (type(error) if error else None) is expected
    if error is not None:
        assert error.provider is Provider.FITBIT


def test_retry_after_prefers_the_fitbit_reset_then_retry_after_then_a_minute() -> None:
    assert retry_after(CIMultiDict({"fitbit-rate-limit-reset": "42", "Retry-After": "7"})) == 42.0
    assert retry_after({"Retry-After": "7"}) == 7.0
    assert retry_after({"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}) == 60.0
    limited = error_for(Provider.GOOGLE_HEALTH, 429, {"Retry-After": "3"}, b"")
    assert isinstance(limited, RateLimited) and limited.retry_after == 3.0


_HTML_503 = b"<!DOCTYPE html><html><head><title>503 Service Unavailable</title></head><body>down</body></html>"


@pytest.mark.parametrize(("provider", "status", "body", "expected"), [
    (Provider.FITBIT, 200, b"{}", None),
    # the documented revocation answers: invalid_grant (both), Fitbit's invalid_token errors body
    (Provider.FITBIT, 400, _fitbit("invalid_grant"), AccessRevoked),
    (Provider.FITBIT, 401, _fitbit("invalid_grant"), AccessRevoked),
    (Provider.FITBIT, 401, _fitbit("invalid_token"), AccessRevoked),
    (Provider.GOOGLE_HEALTH, 400, orjson.dumps({"error": "invalid_grant", "error_description": "Bad Request"}),
     AccessRevoked),
    # the vendor's trouble: never revoked
    (Provider.FITBIT, 503, _HTML_503, VendorUnavailable),
    (Provider.FITBIT, 500, _fitbit("invalid_grant"), VendorUnavailable),
    (Provider.GOOGLE_HEALTH, 503, _HTML_503, VendorUnavailable),
    (Provider.FITBIT, 400, b"<html>Bad Request</html>", VendorUnavailable),
    (Provider.FITBIT, 401, b"", VendorUnavailable),
    (Provider.GOOGLE_HEALTH, 401, _google(401, "UNAUTHENTICATED"), VendorRejected),  # not revoked either
    (Provider.FITBIT, 429, _fitbit("system"), VendorUnavailable),
    (Provider.GOOGLE_HEALTH, 400, orjson.dumps({"error": "invalid_token"}), VendorRejected),
    (Provider.GOOGLE_HEALTH, 401, orjson.dumps({"error": "invalid_client"}), VendorRejected),
    (Provider.FITBIT, 400, _fitbit("invalid_request"), VendorRejected),
])
def test_token_error_for_revokes_only_for_the_documented_answers(
        provider: Provider, status: int, body: bytes, expected: type[VendorError] | None) -> None:
    error = token_error_for(provider, status, {}, body)
    assert (type(error) if error else None) is expected
    if error is not None:
        assert error.provider is provider and error.status == status


@pytest.mark.parametrize("body", [b"<html>ok</html>", b"", b"[]", b'{"token_type": "Bearer"}', b'"x"'])
def test_a_token_answer_without_tokens_is_unavailable(body: bytes) -> None:
    with pytest.raises(VendorUnavailable):
        token_set(Provider.FITBIT, body)


def test_a_token_answer_with_tokens() -> None:
    tokens = token_set(Provider.GOOGLE_HEALTH, b'{"access_token": "a", "expires_in": 60}', previous_refresh="r")
    assert (tokens.access_token, tokens.refresh_token) == ("a", "r")

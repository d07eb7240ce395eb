"""Each simulated vendor's dialect speaks that vendor's error shapes, which the clients' one
error mapping must classify as the scheduler expects."""

from __future__ import annotations

import orjson
import pytest
from multidict import CIMultiDict

from connectors.errors import (
    AccessRevoked,
    RateLimited,
    ScopeMissing,
    TokenExpired,
    VendorRejected,
    error_for,
    quota_remaining,
    token_error_for,
)
from connectors.simulator.dialects import DIALECTS, GOOGLE_HEALTH, VendorDialect
from connectors.simulator.world import Account
from connectors.vendors import fitbit_spec, google_health_spec
from models.providers import Provider


@pytest.fixture(params=list(Provider), ids=str)
def dialect(request: pytest.FixtureRequest) -> VendorDialect:
    return DIALECTS[request.param]


def test_every_provider_has_a_dialect() -> None:
    assert set(DIALECTS) == set(Provider)
    assert all(d.provider is p for p, d in DIALECTS.items())
    assert len({d.token_path for d in DIALECTS.values()}) == len(DIALECTS)  # one host serves them all


def test_a_data_call_401_is_token_expired_whatever_it_says(dialect: VendorDialect) -> None:
    def classified(problem: str) -> object:
        return error_for(dialect.provider, 401, {}, orjson.dumps(dialect.unauthorized(problem)))

    # refresh, then retry: whether the grant is gone only the token endpoint says
    assert isinstance(classified("expired_token"), TokenExpired)
    assert isinstance(classified("invalid_token"), TokenExpired)


def test_google_401s_are_googles_real_shape_without_a_hint() -> None:
    expired, invalid = GOOGLE_HEALTH.unauthorized("expired_token"), GOOGLE_HEALTH.unauthorized("invalid_token")
    assert expired == invalid and expired["error"]["status"] == "UNAUTHENTICATED"
    assert expired["error"]["message"].startswith("Request had invalid authentication credentials.")
    assert b"expired" not in orjson.dumps(expired)


def test_oauth_errors(dialect: VendorDialect) -> None:
    grant = token_error_for(dialect.provider, 400, {}, orjson.dumps(dialect.oauth_error("invalid_grant")))
    client = token_error_for(dialect.provider, 401, {}, orjson.dumps(dialect.oauth_error("invalid_client")))
    assert isinstance(grant, AccessRevoked) and isinstance(client, VendorRejected)


def test_a_429_carries_the_reset(dialect: VendorDialect) -> None:
    headers = CIMultiDict({**dialect.limit_headers(150, 0, 41.2), "Retry-After": "42"})
    limited = error_for(dialect.provider, 429, headers, orjson.dumps(dialect.too_many()))
    assert isinstance(limited, RateLimited) and limited.retry_after == 42.0


def test_limit_headers_and_token_extras_are_each_vendors_own() -> None:
    assert quota_remaining(DIALECTS[Provider.FITBIT].limit_headers(150, 12, 30.0)) == 12
    assert DIALECTS[Provider.GOOGLE_HEALTH].limit_headers(300, 12, 30.0) == {}  # Retry-After on a 429 only
    account = Account("P1", Provider.FITBIT, "ABC123", "ABC123", "UTC", synced_until=0.0)
    assert DIALECTS[Provider.FITBIT].token_extras(account) == {"user_id": "ABC123"}
    assert DIALECTS[Provider.GOOGLE_HEALTH].token_extras(account) == {}


def test_google_insists_on_offline_access() -> None:
    google, fitbit = DIALECTS[Provider.GOOGLE_HEALTH], DIALECTS[Provider.FITBIT]
    assert google.authorize_problem({}) == "access_type=offline is required for a refresh token"
    assert google.authorize_problem({"access_type": "offline"}) is None
    assert fitbit.authorize_problem({}) is None


def test_a_403_for_a_missing_scope_is_scope_missing(dialect: VendorDialect) -> None:
    scope = dialect.scope.split()[0]
    missing = error_for(dialect.provider, 403, {}, orjson.dumps(dialect.insufficient_scope(scope)))
    assert isinstance(missing, ScopeMissing) and missing.status == 403


def test_the_consent_page_names_each_scope_with_what_it_covers() -> None:
    google, fitbit = DIALECTS[Provider.GOOGLE_HEALTH], DIALECTS[Provider.FITBIT]
    assert google.scope.split() == list(google_health_spec.SCOPES) and fitbit.scope.split() == list(fitbit_spec.SCOPES)
    assert google.consent_line(google_health_spec.METRICS_SCOPE) == (
        "See your Google Health health metrics and measurement data (heart-rate, daily-resting-heart-rate)")
    assert google.consent_line(google_health_spec.SLEEP_SCOPE) == "See your Google Health sleep data (sleep)"
    assert fitbit.consent_line("settings").endswith("(devices)") and "(" not in fitbit.consent_line("profile")
    assert all(dialect.consent_line(s) != s for dialect in DIALECTS.values() for s in dialect.scope.split())
    # a form's scope values: one space-separated value (the authorize URL's) or one per checkbox
    assert fitbit.grantable(["sleep activity", "unknown"]) == ["activity", "sleep"]
    assert fitbit.grantable(["profile", "heartrate"]) == ["heartrate", "profile"] and fitbit.grantable([]) == []

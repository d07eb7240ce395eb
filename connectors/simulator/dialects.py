"""How each simulated vendor differs from the other where the simulator's routes are shared:
OAuth paths, the consent page's demands and its words for each scope, error, 401, 403 and 429
bodies, rate-limit headers, and what a token response carries besides the tokens.

One ``VendorDialect`` per vendor, in ``DIALECTS``; the OAuth routes and the data-call guard
ask the dialect instead of branching on the provider. Paths, scopes and header names come from
the vendors' spec modules (the same facts the clients use); the bodies are written here, in the
vendors' own shapes, so that the clients' error mapping is tested against them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from connectors.simulator.world import Account
from connectors.vendors import fitbit_spec, google_health_spec
from models.providers import Provider

__all__ = ["DIALECTS", "FITBIT", "GOOGLE_HEALTH", "VendorDialect"]


@dataclass(frozen=True, slots=True)
class VendorDialect(ABC):
    """One vendor's side of the shared simulator routes (a subclass per vendor, one instance each).

    ::

        dialect = DIALECTS[Provider.FITBIT]
        web.json_response(dialect.unauthorized("expired_token"), status=401)

    :param provider: the vendor.
    :param name: how the consent page names it.
    :param authorize_path: the consent page (GET shows it, POST is the participant's answer).
    :param token_path: code exchange and refresh.
    :param revoke_path: revoke a token (and the grant behind it).
    :param scope: every scope the consent page can grant, space-separated, in the vendor's order
        (a grant is the ones the participant left ticked).
    :param scope_words: how the consent page names each scope, in plain words.
    :param covers: the data types each scope lets a client read.
    :param authorize_requires: query parameters the consent page insists on, beyond OAuth's own.
    """

    provider: Provider
    name: str
    authorize_path: str
    token_path: str
    revoke_path: str
    scope: str
    scope_words: dict[str, str] = field(default_factory=dict)
    covers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    authorize_requires: dict[str, str] = field(default_factory=dict)

    def grantable(self, asked: Any) -> list[str]:
        """The scopes a consent form's ``scope`` values grant: the known ones among them (a value
        may hold several, space-separated, as the authorize URL does), in the vendor's order."""
        given = {scope for value in asked for scope in str(value).split()}
        return [scope for scope in self.scope.split() if scope in given]

    def consent_line(self, scope: str) -> str:
        """One line of the consent page: what the scope shows, in plain words, and what it covers."""
        covered = self.covers.get(scope, ())
        return self.scope_words.get(scope, scope) + (f" ({', '.join(covered)})" if covered else "")

    def authorize_problem(self, query: Any) -> str | None:
        """What the vendor's own demands of the consent page find wrong with ``query``."""
        for name, value in self.authorize_requires.items():
            if query.get(name) != value:
                return f"{name}={value} is required for a refresh token"
        return None

    @abstractmethod
    def oauth_error(self, error: str) -> dict[str, Any]:
        """The token endpoint's error body for the OAuth ``error`` code."""

    @abstractmethod
    def unauthorized(self, problem: str) -> dict[str, Any]:
        """A data call's 401 body; ``problem`` is ``invalid_token`` or ``expired_token`` (Fitbit says
        which, Google does not)."""

    @abstractmethod
    def too_many(self) -> dict[str, Any]:
        """A 429 body."""

    @abstractmethod
    def insufficient_scope(self, scope: str) -> dict[str, Any]:
        """A data call's 403 body: the grant lacks ``scope``."""

    @abstractmethod
    def limit_headers(self, limit: int, remaining: int, reset: float) -> dict[str, str]:
        """The rate-limit headers on every data answer (``reset``: seconds to the window's end)."""

    @abstractmethod
    def token_extras(self, account: Account) -> dict[str, Any]:
        """What a token response carries besides the tokens, scope and lifetime."""


@dataclass(frozen=True, slots=True)
class _FitbitDialect(VendorDialect):
    def oauth_error(self, error: str) -> dict[str, Any]:
        return {"errors": [{"errorType": error, "message": error.replace("_", " ")}], "success": False}

    def unauthorized(self, problem: str) -> dict[str, Any]:
        return {"errors": [{"errorType": problem, "message": f"Access token {problem}"}], "success": False}

    def too_many(self) -> dict[str, Any]:
        return {"errors": [{"errorType": "system", "message": "Too Many Requests"}], "success": False}

    def insufficient_scope(self, scope: str) -> dict[str, Any]:
        # as a real one reads (https://github.com/NickHeiner/decomissioned-fitbit-export/issues/24)
        return {"errors": [{"errorType": fitbit_spec.INSUFFICIENT_SCOPE, "message": (
            f"This application does not have permission to access {scope} data. Visit "
            "https://dev.fitbit.com/docs/oauth2 for more information on the Fitbit Web API authorization process.")}],
            "success": False}

    def limit_headers(self, limit: int, remaining: int, reset: float) -> dict[str, str]:
        return {fitbit_spec.RATE_LIMIT_LIMIT: str(limit), fitbit_spec.RATE_LIMIT_REMAINING: str(remaining),
                fitbit_spec.RATE_LIMIT_RESET: str(int(reset + 0.999))}

    def token_extras(self, account: Account) -> dict[str, Any]:
        return {"user_id": account.user_id}


_GOOGLE_UNAUTHENTICATED = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid "
    "authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.")


@dataclass(frozen=True, slots=True)
class _GoogleHealthDialect(VendorDialect):
    def oauth_error(self, error: str) -> dict[str, Any]:  # RFC 6749 §5.2
        return {"error": error, "error_description": error.replace("_", " ")}

    def unauthorized(self, problem: str) -> dict[str, Any]:
        # Google's one answer to an access token it does not take, expired, revoked or never issued:
        # nothing in it says which (so nothing here does either)
        return {"error": {"code": 401, "status": "UNAUTHENTICATED", "message": _GOOGLE_UNAUTHENTICATED}}

    def too_many(self) -> dict[str, Any]:
        # status RESOURCE_EXHAUSTED, ErrorInfo RATE_LIMIT_EXCEEDED, QuotaFailure violations (docs/vendors.md,
        # "Rate limits": a third-party fixture of a real answer)
        return {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "Quota exceeded for quota metric "
                          "'Requests' and limit 'Requests per minute per user'.", "details": [
                              {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "RATE_LIMIT_EXCEEDED",
                               "domain": "googleapis.com", "metadata": {"service": "health.googleapis.com"}},
                              {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [
                                  {"subject": "user", "description": "Requests per minute per user"}]}]}}

    def insufficient_scope(self, scope: str) -> dict[str, Any]:
        # Google's shape for a token without the scope a method needs (google.api.ErrorReason,
        # https://cloud.google.com/dotnet/docs/reference/Google.Api.CommonProtos/latest/Google.Api.ErrorReason)
        return {"error": {"code": 403, "message": "Request had insufficient authentication scopes.",
                          "status": "PERMISSION_DENIED", "details": [
                              {"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                               "reason": google_health_spec.INSUFFICIENT_SCOPE_REASON, "domain": "googleapis.com",
                               "metadata": {"service": "health.googleapis.com"}}]}}

    def limit_headers(self, limit: int, remaining: int, reset: float) -> dict[str, str]:
        return {}  # Google answers 429 with Retry-After only

    def token_extras(self, account: Account) -> dict[str, Any]:
        return {}


def _covers(scope_of: dict[str, str]) -> dict[str, tuple[str, ...]]:
    covered: dict[str, tuple[str, ...]] = {}
    for data_type, scope in scope_of.items():
        covered[scope] = (*covered.get(scope, ()), data_type)
    return covered


FITBIT = _FitbitDialect(
    provider=Provider.FITBIT, name="Fitbit", authorize_path=fitbit_spec.AUTHORIZE_PATH,
    token_path=fitbit_spec.TOKEN_PATH, revoke_path=fitbit_spec.REVOKE_PATH, scope=" ".join(fitbit_spec.SCOPES),
    scope_words={"activity": "Your activity and exercise: steps, distance, calories, active minutes",
                 "heartrate": "Your heart rate", "sleep": "Your sleep",
                 "settings": "Your Fitbit devices and settings: battery and last sync",
                 "profile": "Your profile: who you are at Fitbit and your time zone"},
    covers=_covers(fitbit_spec.SCOPE_OF))
GOOGLE_HEALTH = _GoogleHealthDialect(
    provider=Provider.GOOGLE_HEALTH, name="Google Health", authorize_path=google_health_spec.AUTHORIZE_PATH,
    token_path=google_health_spec.TOKEN_PATH, revoke_path=google_health_spec.REVOKE_PATH,
    scope=" ".join(google_health_spec.SCOPES),
    # the scopes page's own words (https://developers.google.com/health/scopes)
    scope_words={google_health_spec.ACTIVITY_SCOPE: "See your Google Health activity and fitness data",
                 google_health_spec.METRICS_SCOPE: "See your Google Health health metrics and measurement data",
                 google_health_spec.SLEEP_SCOPE: "See your Google Health sleep data",
                 google_health_spec.SETTINGS_SCOPE: "See your Google Health settings"},
    covers=_covers(google_health_spec.SCOPE_OF),
    # the consent page refuses a request that could not get a refresh token; ``prompt`` is only a wish
    authorize_requires={"access_type": google_health_spec.AUTHORIZE_EXTRAS["access_type"]})
DIALECTS: dict[Provider, VendorDialect] = {dialect.provider: dialect for dialect in (FITBIT, GOOGLE_HEALTH)}

"""Where each vendor lives, and the OAuth client we are there (research/fitbit_allofus.md §2.7, §3.2).

The simulator serves every path below on one host, so ``WEARABLES_VENDOR_API_BASE`` moves
all of them at once; unset, they are the vendors' real hosts.
"""

from __future__ import annotations

from dataclasses import dataclass

from models.providers import Provider
from runtime.settings import Settings

__all__ = ["DEMO_SECRETS", "Credentials", "Endpoints", "credentials", "endpoints", "webhook_secrets"]

# Public on purpose, like the demo HMAC key: the simulator's stand-ins, refused outside the demo.
DEMO_SECRETS = {
    "fitbit_client_secret": "demo-fitbit-client-secret",
    "google_client_secret": "demo-google-client-secret",
    "fitbit_verify_code": "demo-fitbit-verify-code",
    "google_webhook_token": "demo-google-webhook-token",
}


@dataclass(frozen=True, slots=True)
class Endpoints:
    api: str  # data calls
    authorize: str  # the page the participant consents on
    token: str  # code exchange and refresh
    revoke: str


@dataclass(frozen=True, slots=True)
class Credentials:
    client_id: str
    client_secret: str = ""  # repr would not show it anyway; never logged

    def __repr__(self) -> str:
        return f"Credentials(client_id={self.client_id!r})"


_REAL = {
    Provider.FITBIT: Endpoints(api="https://api.fitbit.com", authorize="https://www.fitbit.com/oauth2/authorize",
                               token="https://api.fitbit.com/oauth2/token",  # noqa: S106 - a URL
                               revoke="https://api.fitbit.com/oauth2/revoke"),
    Provider.GOOGLE_HEALTH: Endpoints(api="https://health.googleapis.com",
                                      authorize="https://accounts.google.com/o/oauth2/v2/auth",
                                      token="https://oauth2.googleapis.com/token",  # noqa: S106 - a URL
                                      revoke="https://oauth2.googleapis.com/revoke"),
}
_PATHS = {
    Provider.FITBIT: ("", "/oauth2/authorize", "/oauth2/token", "/oauth2/revoke"),
    Provider.GOOGLE_HEALTH: ("", "/o/oauth2/v2/auth", "/token", "/revoke"),
}


def endpoints(settings: Settings, provider: Provider) -> Endpoints:
    if settings.vendor_api_base is None:
        return _REAL[provider]
    base = settings.vendor_api_base.rstrip("/")
    return Endpoints(*(base + path for path in _PATHS[provider]))


def credentials(settings: Settings, provider: Provider) -> Credentials:
    if provider is Provider.FITBIT:
        return Credentials(settings.fitbit_client_id, settings.demo_or_required(
            settings.fitbit_client_secret, "WEARABLES_FITBIT_CLIENT_SECRET", DEMO_SECRETS["fitbit_client_secret"]))
    return Credentials(settings.google_client_id, settings.demo_or_required(
        settings.google_client_secret, "WEARABLES_GOOGLE_CLIENT_SECRET", DEMO_SECRETS["google_client_secret"]))


def webhook_secrets(settings: Settings) -> tuple[str, str]:
    """(Fitbit subscriber verification code, the Authorization value Google sends)."""
    return (settings.demo_or_required(settings.fitbit_verify_code, "WEARABLES_FITBIT_VERIFY_CODE",
                                      DEMO_SECRETS["fitbit_verify_code"]),
            settings.demo_or_required(settings.google_webhook_token, "WEARABLES_GOOGLE_WEBHOOK_TOKEN",
                                      DEMO_SECRETS["google_webhook_token"]))

"""Where each vendor lives, and the OAuth client we are there (docs/vendors.md, Fitbit Web API
and Google Health API: "OAuth").

The simulator serves every path below on one host, so ``WEARABLES_VENDOR_API_BASE`` moves
all of them at once; unset, they are the vendors' real hosts (from the spec modules).

With ``registry.build_clients``, the only place the clients' settings are read.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from connectors.vendors import fitbit_spec, google_health_spec
from models.providers import Provider
from runtime.settings import GatewaySettings, VendorSettings

__all__ = ["DEMO_SECRETS", "Credentials", "Endpoints", "credentials", "endpoints", "is_loopback",
           "webhook_secrets"]

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
    Provider.FITBIT: Endpoints(api=fitbit_spec.API, authorize=fitbit_spec.AUTHORIZE_URL,
                               token=fitbit_spec.API + fitbit_spec.TOKEN_PATH,
                               revoke=fitbit_spec.API + fitbit_spec.REVOKE_PATH),
    Provider.GOOGLE_HEALTH: Endpoints(api=google_health_spec.API, authorize=google_health_spec.AUTHORIZE_URL,
                                      token=google_health_spec.TOKEN_URL, revoke=google_health_spec.REVOKE_URL),
}
_PATHS = {  # the same endpoints as paths on one host (the simulator's)
    Provider.FITBIT: ("", fitbit_spec.AUTHORIZE_PATH, fitbit_spec.TOKEN_PATH, fitbit_spec.REVOKE_PATH),
    Provider.GOOGLE_HEALTH: ("", google_health_spec.AUTHORIZE_PATH, google_health_spec.TOKEN_PATH,
                             google_health_spec.REVOKE_PATH),
}
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def endpoints(vendors: VendorSettings, provider: Provider) -> Endpoints:
    base = vendors.api_base
    if base is None:
        return _REAL[provider]
    return Endpoints(*(base.rstrip("/") + path for path in _PATHS[provider]))


def is_loopback(url: str) -> bool:
    """Whether ``url`` is on this machine (the simulator): the one place plain http is fine."""
    return urlsplit(url).hostname in _LOOPBACK


def credentials(vendors: VendorSettings, provider: Provider) -> Credentials:
    if provider is Provider.FITBIT:
        return Credentials(vendors.fitbit_client_id, vendors.demo_or_required(
            vendors.fitbit_client_secret, "WEARABLES_FITBIT_CLIENT_SECRET", DEMO_SECRETS["fitbit_client_secret"]))
    return Credentials(vendors.google_client_id, vendors.demo_or_required(
        vendors.google_client_secret, "WEARABLES_GOOGLE_CLIENT_SECRET", DEMO_SECRETS["google_client_secret"]))


def webhook_secrets(gateway: GatewaySettings) -> tuple[str, str]:
    """(Fitbit subscriber verification code, the Authorization value Google sends)."""
    return (gateway.demo_or_required(gateway.fitbit_verify_code, "WEARABLES_FITBIT_VERIFY_CODE",
                                     DEMO_SECRETS["fitbit_verify_code"]),
            gateway.demo_or_required(gateway.google_webhook_token, "WEARABLES_GOOGLE_WEBHOOK_TOKEN",
                                     DEMO_SECRETS["google_webhook_token"]))

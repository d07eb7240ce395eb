"""The symmetric keys of a run: the vault's, the portal session's, and keys derived from the secret key.

A configured key variable holds one or more Fernet keys, comma-separated. The first encrypts;
every one decrypts (``MultiFernet``), so a key is rotated by putting the new one first, running
``wearables vault rotate-key`` (which re-encrypts what is stored), then dropping the old one.
Session cookies need no re-encryption: they expire (``WEARABLES_SESSION_MAX_AGE``).

The demo derives its keys from the public demo secret; outside the demo a key derived from or
equal to a demo value is refused, as is one containing the word "demo" or with fewer than 16
distinct characters (``weak_key_problem``), and a missing key is a one-line ConfigurationError.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, MultiFernet
from pydantic import SecretStr

from models.errors import ConfigurationError
from runtime.settings import DEMO_SECRET_KEY, Settings, weak_key_problem

__all__ = ["demo_key", "derived_fernet", "session_fernet", "vault_fernet"]

_MAKE_KEY = "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`"


def demo_key(purpose: str) -> str:
    """The demo's public Fernet key for ``purpose`` ("vault", "session"): never for real data."""
    return _derive(DEMO_SECRET_KEY.encode(), purpose)


def _derive(secret: bytes, purpose: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(purpose.encode() + b"\x00" + secret).digest()).decode()


def _fernet_keys(settings: Settings, value: SecretStr | None, variable: str, purpose: str) -> MultiFernet:
    if value is None:
        if settings.is_demo:
            return MultiFernet([Fernet(_derive(settings.require_secret_key(), purpose))])
        raise ConfigurationError(f"{variable} is not set: make a key with {_MAKE_KEY}")
    keys = [k.strip() for k in value.get_secret_value().split(",") if k.strip()]
    if not keys:
        raise ConfigurationError(f"{variable} is empty: make a key with {_MAKE_KEY}")
    fernets = []
    for position, key in enumerate(keys, start=1):
        if not settings.is_demo and key in {demo_key("vault"), demo_key("session")}:
            raise ConfigurationError(f"{variable} (key {position}) is a public demo key, refused outside the demo")
        try:
            fernets.append(Fernet(key.encode()))
        except ValueError:
            raise ConfigurationError(f"{variable} (key {position}) is not a Fernet key: make one with "
                                     f"{_MAKE_KEY}") from None
        problem = None if settings.is_demo else weak_key_problem(key)
        if problem is not None:
            raise ConfigurationError(f"{variable} (key {position}) {problem}, refused outside the demo: make one "
                                     f"with {_MAKE_KEY}")
    return MultiFernet(fernets)


def vault_fernet(settings: Settings) -> MultiFernet:
    """Encrypts tokens and vendor user IDs at rest (``WEARABLES_VAULT_KEY``)."""
    return _fernet_keys(settings, settings.vault_key, "WEARABLES_VAULT_KEY", "vault")


def session_fernet(settings: Settings) -> MultiFernet:
    """Encrypts the portal's session cookie (``WEARABLES_SESSION_KEY``)."""
    return _fernet_keys(settings, settings.session_key, "WEARABLES_SESSION_KEY", "session")


def derived_fernet(settings: Settings, purpose: str) -> Fernet:
    """A Fernet key derived from ``WEARABLES_SECRET_KEY`` for one purpose (e.g. "invitation"):
    what it protects becomes unreadable when the secret key changes, like the research IDs."""
    return Fernet(_derive(settings.require_secret_key(), purpose))

"""OAuth2 pieces both vendors share: PKCE (RFC 7636) and the token set we keep per participant."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

__all__ = ["TokenSet", "pkce_challenge", "pkce_pair"]


def pkce_challenge(verifier: str) -> str:
    """S256: base64url(sha256(verifier)) without padding."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def pkce_pair() -> tuple[str, str]:
    """A fresh (code_verifier, code_challenge)."""
    verifier = secrets.token_urlsafe(48)[:64]
    return verifier, pkce_challenge(verifier)


@dataclass(frozen=True, slots=True)
class TokenSet:
    access_token: str
    refresh_token: str
    expires_at: float  # epoch seconds
    scope: str = ""

    def __repr__(self) -> str:  # never print a token
        return f"TokenSet(expires_at={self.expires_at:.0f}, scope={self.scope!r})"

    def expires_within(self, seconds: float) -> bool:
        return self.expires_at - time.time() < seconds

    @classmethod
    def from_response(cls, body: dict[str, Any], *, previous_refresh: str | None = None) -> TokenSet:
        """From a token-endpoint JSON body. Google omits refresh_token on refresh: keep the old one."""
        refresh = body.get("refresh_token") or previous_refresh
        if not body.get("access_token") or not refresh:
            raise ValueError("token response without access_token/refresh_token")
        return cls(access_token=str(body["access_token"]), refresh_token=str(refresh),
                   expires_at=time.time() + float(body.get("expires_in", 3600)), scope=str(body.get("scope", "")))

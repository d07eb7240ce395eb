"""PKCE S256 and the token set: an independent challenge (openssl), and token responses read
the way both vendors write them."""

from __future__ import annotations

import time

import pytest

from connectors.oauth import TokenSet, pkce_challenge, pkce_pair


def test_the_challenge_is_unpadded_base64url_sha256() -> None:
    verifier = "a-verifier-of-forty-three-characters-at-least-0123"
    # printf '%s' "$verifier" | openssl dgst -sha256 -binary | base64 | tr '+/' '-_' | tr -d '='
    assert pkce_challenge(verifier) == "TakSmvTIIJpXVuWqT2SC_7mIS-4b-6AEwXgiHDAcnfo"
    verifier, challenge = pkce_pair()
    assert 43 <= len(verifier) <= 128 and challenge == pkce_challenge(verifier) and pkce_pair()[0] != verifier


def test_token_responses() -> None:
    fitbit = TokenSet.from_response({"access_token": "a", "refresh_token": "r", "expires_in": 28800,
                                     "scope": "activity sleep", "user_id": "ABC123"})
    assert (fitbit.access_token, fitbit.refresh_token, fitbit.scope) == ("a", "r", "activity sleep")
    assert not fitbit.expires_within(28000) and fitbit.expires_within(29000)
    google = TokenSet.from_response({"access_token": "access-xyz", "expires_in": 3599}, previous_refresh="refresh-xyz")
    assert google.refresh_token == "refresh-xyz"  # Google's refresh answer omits it: the old one stays
    assert abs(google.expires_at - (time.time() + 3599)) < 5
    with pytest.raises(ValueError):
        TokenSet.from_response({"access_token": "a"})
    assert "xyz" not in repr(google)  # never print a token

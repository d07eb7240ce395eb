"""Invitation tokens: they name the participant without showing them, and are refused when
tampered with, expired, malformed, or made under another secret key."""

from __future__ import annotations

import base64
import time

import pytest

from portal.invitations import InvalidInvitation, invitation_token, invitation_url, read_invitation
from runtime.settings import Settings

SETTINGS = Settings.model_validate({"env": "demo", "portal_public_url": "https://portal.example.org/"})


def test_a_token_names_the_participant_without_showing_them() -> None:
    token = invitation_token(SETTINGS, "P0001234")
    assert read_invitation(SETTINGS, token) == "P0001234"
    assert "P0001234" not in token
    assert b"P0001234" not in base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))  # encrypted, not encoded
    assert invitation_token(SETTINGS, "P0001234") != token  # a fresh IV each time


def test_the_url_is_on_the_public_address() -> None:
    url = invitation_url(SETTINGS, "P1")
    assert url.startswith("https://portal.example.org/i/")
    assert read_invitation(SETTINGS, url.rsplit("/", 1)[1]) == "P1"


def test_a_tampered_or_malformed_token_is_refused() -> None:
    token = invitation_token(SETTINGS, "P1")
    flipped = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
    for bad in (flipped, "", "garbage", "é", token[:-3], token + "xx"):
        with pytest.raises(InvalidInvitation):
            read_invitation(SETTINGS, bad)


def test_an_expired_token_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    token = invitation_token(SETTINGS, "P1")
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + SETTINGS.portal.invitation_max_age - 60)
    assert read_invitation(SETTINGS, token) == "P1"
    monkeypatch.setattr(time, "time", lambda: real() + SETTINGS.portal.invitation_max_age + 60)
    with pytest.raises(InvalidInvitation):
        read_invitation(SETTINGS, token)


def test_a_token_made_under_another_secret_key_is_refused() -> None:
    other = Settings.model_validate({"env": "demo", "secret_key": "another-secret-key-" * 3})
    with pytest.raises(InvalidInvitation):
        read_invitation(other, invitation_token(SETTINGS, "P1"))


def test_nobody_is_invited_without_an_id() -> None:
    with pytest.raises(ValueError, match="empty"):
        invitation_token(SETTINGS, "")

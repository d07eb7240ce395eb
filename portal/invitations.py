"""Invitation links: the study's way to tell the portal who a participant is, without a password.

An invitation is ``{public_url}/i/{token}`` where the token is the participant id encrypted
with Fernet under a key derived from ``WEARABLES_SECRET_KEY`` for this one purpose
(``derived_fernet(settings, "invitation")``). Fernet both encrypts and authenticates, and it
carries the time it was made, so:

- the participant id is never readable in the URL (a signed-only token, such as itsdangerous
  makes, would carry it base64-encoded for anyone to read: in browser history, proxy logs,
  a screenshot);
- a token changed by one character is refused (the HMAC fails);
- a token older than ``settings.portal.invitation_max_age`` is refused (decrypt with ``ttl``).
"""

from __future__ import annotations

import re

from cryptography.fernet import InvalidToken

from runtime.keys import derived_fernet
from runtime.settings import Settings

__all__ = ["InvalidInvitation", "invitation_token", "invitation_url", "read_invitation"]

_PURPOSE = "invitation"
# what Fernet makes: URL-safe base64, padding only at the end (the decoder would ignore text after it)
_SHAPE = re.compile(r"[A-Za-z0-9_-]{40,2000}={0,2}")


class InvalidInvitation(ValueError):
    """The invitation token was tampered with, has expired, or is not a token at all."""


def invitation_token(settings: Settings, participant_id: str) -> str:
    """The token of an invitation for ``participant_id`` (URL-safe base64, no padding issues)."""
    if not participant_id:
        raise ValueError("participant_id is empty")
    return derived_fernet(settings, _PURPOSE).encrypt(participant_id.encode()).decode("ascii")


def invitation_url(settings: Settings, participant_id: str) -> str:
    """The link the study sends: ``{settings.portal.public_url}/i/{token}``."""
    return f"{settings.portal.public_url}/i/{invitation_token(settings, participant_id)}"


def read_invitation(settings: Settings, token: str) -> str:
    """The participant id an invitation token names; ``InvalidInvitation`` when it cannot be trusted."""
    if not _SHAPE.fullmatch(token):
        raise InvalidInvitation("the invitation is not a token")
    try:
        plain = derived_fernet(settings, _PURPOSE).decrypt(token.encode("ascii"),
                                                           ttl=int(settings.portal.invitation_max_age))
        participant_id = plain.decode("utf-8")
    except (InvalidToken, UnicodeError, ValueError):  # tampered, expired, not ASCII, not a Fernet token
        raise InvalidInvitation("the invitation is not valid or has expired") from None
    if not participant_id:
        raise InvalidInvitation("the invitation names nobody")
    return participant_id

"""Pseudonymous research IDs and the per-participant date shift (pure functions).

A research_id is a keyed HMAC-SHA256 of the cohort's participant_id, so it is stable for a
given secret, reveals nothing without the secret, and is what every record outside the
connector layer is keyed by. The date shift (1-364 days back, as All of Us applies to its
registered tier) is derived from the same secret and the research_id.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["MAX_DATE_SHIFT_DAYS", "date_shift_days", "research_id"]

MAX_DATE_SHIFT_DAYS = 364
_RESEARCH_ID_DIGITS = 20  # 80 bits: no collisions expected below ~10^12 participants


def research_id(secret: bytes, participant_id: str) -> str:
    """``R`` + 20 hex digits of HMAC-SHA256(secret, participant_id)."""
    if not participant_id:
        raise ValueError("participant_id is empty")
    digest = hmac.new(secret, b"research-id\x00" + participant_id.encode(), hashlib.sha256).hexdigest()
    return "R" + digest[:_RESEARCH_ID_DIGITS]


def date_shift_days(secret: bytes, research_id_: str) -> int:
    """Days (1-364) to shift this participant's dates back in the de-identified view."""
    digest = hmac.new(secret, b"date-shift\x00" + research_id_.encode(), hashlib.sha256).digest()
    return 1 + int.from_bytes(digest[:8], "big") % MAX_DATE_SHIFT_DAYS

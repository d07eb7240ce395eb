"""ParticipantLink (models/participants.py): a participant's link to a vendor, never its tokens."""

from __future__ import annotations

from models.participants import ApiGeneration, LinkStatus, ParticipantLink
from models.providers import Provider


def test_participant_link_round_trips_without_a_token() -> None:
    link = ParticipantLink(research_id="R1", provider=Provider.GOOGLE_HEALTH,
                           api_generation=ApiGeneration.GOOGLE_HEALTH_V4, status=LinkStatus.LINKED, key_id="k1",
                           linked_at=3.0)
    assert ParticipantLink.from_bytes(link.to_bytes()) == link
    assert b"token" not in link.to_bytes()

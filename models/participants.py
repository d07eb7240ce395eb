"""ParticipantLink: a record of the compacted ``participants`` topic. It never holds tokens."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import orjson

from models._validate import load_object, req_str
from models.errors import DecodeError, Reason
from models.providers import Provider

__all__ = ["PARTICIPANT_SCHEMA_VERSION", "ApiGeneration", "LinkStatus", "ParticipantLink"]

PARTICIPANT_SCHEMA_VERSION = 1


class LinkStatus(StrEnum):
    LINKED = "linked"
    REVOKED = "revoked"  # the vendor or the participant revoked the grant; collection stopped
    WITHDRAWN = "withdrawn"  # the participant left the study; data purged on request


class ApiGeneration(StrEnum):
    FITBIT_WEB_API = "fitbit_web_api"  # legacy, switched off November 2026
    GOOGLE_HEALTH_V4 = "google_health_v4"  # users must re-consent for it


@dataclass(frozen=True, slots=True)
class ParticipantLink:
    """The link state of one participant (the record key is its research_id)."""

    research_id: str
    provider: Provider
    api_generation: ApiGeneration
    status: LinkStatus
    key_id: str
    consented_at: float | None = None
    linked_at: float | None = None
    revoked_at: float | None = None
    withdrawn_at: float | None = None
    # data types the participant did not grant (a scope unticked at consent, or refused with 403):
    # not fetched, and shown to them and to data engineers
    denied_data_types: tuple[str, ...] = ()

    def to_bytes(self) -> bytes:
        return orjson.dumps({
            "v": PARTICIPANT_SCHEMA_VERSION, "research_id": self.research_id, "provider": self.provider.value,
            "api_generation": self.api_generation.value, "status": self.status.value, "key_id": self.key_id,
            "consented_at": self.consented_at, "linked_at": self.linked_at, "revoked_at": self.revoked_at,
            "withdrawn_at": self.withdrawn_at, "denied_data_types": list(self.denied_data_types),
        })

    @classmethod
    def from_bytes(cls, data: bytes) -> ParticipantLink:
        record = load_object(data, "participant record")
        try:
            return cls(
                research_id=req_str(record, "research_id"), provider=Provider(req_str(record, "provider")),
                api_generation=ApiGeneration(req_str(record, "api_generation")),
                status=LinkStatus(req_str(record, "status")), key_id=req_str(record, "key_id"),
                consented_at=record.get("consented_at"), linked_at=record.get("linked_at"),
                revoked_at=record.get("revoked_at"), withdrawn_at=record.get("withdrawn_at"),
                denied_data_types=tuple(str(t) for t in record.get("denied_data_types") or ()),
            )
        except ValueError as error:
            raise DecodeError(str(error), reason=Reason.BAD_FIELD) from None

"""FetchRequest: a record of the ``fetch-requests`` topic (what the scheduler should fetch)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

import orjson

from models._validate import load_object, req_float, req_str
from models.errors import DecodeError, Reason
from models.providers import Provider

__all__ = ["FETCH_SCHEMA_VERSION", "FetchReason", "FetchRequest"]

FETCH_SCHEMA_VERSION = 1


class FetchReason(StrEnum):
    WEBHOOK = "webhook"
    POLL = "poll"
    BACKFILL = "backfill"


@dataclass(frozen=True, slots=True)
class FetchRequest:
    """Fetch ``data_type`` of one participant (the record key) for local dates start..end."""

    provider: Provider
    data_type: str
    start_date: str
    end_date: str
    reason: FetchReason
    requested_at: float = 0.0

    def __post_init__(self) -> None:
        for name in ("start_date", "end_date"):
            try:
                date.fromisoformat(getattr(self, name))
            except ValueError:
                raise DecodeError("is not an ISO date", reason=Reason.BAD_FIELD, field=name) from None
        if self.end_date < self.start_date:
            raise DecodeError("ends before it starts", reason=Reason.BAD_FIELD, field="end_date")

    def to_bytes(self) -> bytes:
        return orjson.dumps({
            "v": FETCH_SCHEMA_VERSION, "provider": self.provider.value, "data_type": self.data_type,
            "start_date": self.start_date, "end_date": self.end_date, "reason": self.reason.value,
            "requested_at": self.requested_at,
        })

    @classmethod
    def from_bytes(cls, data: bytes) -> FetchRequest:
        record = load_object(data, "fetch request")
        try:
            provider, reason = Provider(req_str(record, "provider")), FetchReason(req_str(record, "reason"))
        except ValueError as error:
            raise DecodeError(str(error), reason=Reason.BAD_FIELD, field="provider/reason") from None
        return cls(provider=provider, data_type=req_str(record, "data_type"),
                   start_date=req_str(record, "start_date"), end_date=req_str(record, "end_date"),
                   reason=reason, requested_at=req_float(record, "requested_at"))

"""RawPage: one vendor response page, verbatim, with the request metadata.

On the wire (topic ``raw.<provider>``) a page is one line of orjson metadata, a newline, then
the vendor's bytes exactly as received: no base64, no re-encoding, replayable forever.
The metadata never holds a vendor user ID or a token; the record key is the research_id.

    page = RawPage(provider=Provider.FITBIT, data_type="activities-steps-intraday",
                   date="2026-11-01", body=b'{"activities-steps": ...}', detail="1min",
                   timezone="America/New_York", fetched_at=1793500000.0, request_id="r-1")
    assert RawPage.from_bytes(page.to_bytes()) == page
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import orjson

from models._validate import opt_str, req_float, req_int, req_str
from models.errors import DecodeError, Reason
from models.providers import Provider

__all__ = ["FITBIT_DATA_TYPES", "GOOGLE_HEALTH_DATA_TYPES", "RAW_SCHEMA_VERSION", "RawPage"]

RAW_SCHEMA_VERSION = 1

#: Fitbit Web API resources we fetch or import (the resource folder names of cohort archives).
FITBIT_DATA_TYPES = frozenset({
    "activities-heart-intraday", "activities-steps-intraday", "activities-summary", "sleep", "devices",
})
#: Google Health API v4 data types we list, plus ``paired-devices`` (the user's devices) and
#: ``deletions``: a DELETE notification's data type and intervals, as the gateway received them
#: (without the user id; see ``streams/normalize/google_deletions.py``).
GOOGLE_HEALTH_DATA_TYPES = frozenset({"steps", "heart-rate", "sleep", "daily-resting-heart-rate", "paired-devices",
                                      "deletions"})
_DATA_TYPES = {Provider.FITBIT: FITBIT_DATA_TYPES, Provider.GOOGLE_HEALTH: GOOGLE_HEALTH_DATA_TYPES}


@dataclass(frozen=True, slots=True)
class RawPage:
    """A vendor response page plus what was asked for.

    :param provider: which vendor API (or archive of it) the bytes come from.
    :param data_type: the vendor resource / data type, e.g. ``activities-heart-intraday``, ``heart-rate``.
    :param date: the requested local date (ISO) for per-day resources; None for undated ones.
    :param body: the response body, byte for byte.
    :param detail: intraday detail level (``1sec``, ``1min``) when the request had one.
    :param timezone: the participant's IANA time zone when known (Fitbit profile ``timezone``).
    :param utc_offset_ms: the participant's UTC offset when known (Fitbit profile ``offsetFromUTCMillis``).
    :param fetched_at: when the page was fetched (epoch seconds, UTC).
    :param request_id: an opaque id of the request (for tracing; not an identifier of a person).
    :param origin: ``api``, ``archive``, ``simulator`` or ``webhook`` (a notification's content).
    :param page_token: the page token that produced this page (paginated APIs).
    """

    provider: Provider
    data_type: str
    date: str | None
    body: bytes = field(repr=False)
    detail: str | None = None
    timezone: str | None = None
    utc_offset_ms: int | None = None
    fetched_at: float = 0.0
    request_id: str = ""
    origin: str = "api"
    page_token: str | None = None

    def __post_init__(self) -> None:
        if self.data_type not in _DATA_TYPES[self.provider]:
            raise DecodeError(f"{self.data_type!r} is not a {self.provider.value} data type we handle",
                              reason=Reason.UNKNOWN_DATA_TYPE, field="data_type")
        if self.date is not None:
            try:
                date.fromisoformat(self.date)
            except ValueError:
                raise DecodeError(f"{self.date!r} is not an ISO date", reason=Reason.BAD_FIELD,
                                  field="date") from None

    def metadata(self) -> dict[str, Any]:
        return {
            "v": RAW_SCHEMA_VERSION, "provider": self.provider.value, "data_type": self.data_type,
            "date": self.date, "detail": self.detail, "timezone": self.timezone,
            "utc_offset_ms": self.utc_offset_ms, "fetched_at": self.fetched_at,
            "request_id": self.request_id, "origin": self.origin, "page_token": self.page_token,
        }

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.metadata()) + b"\n" + self.body

    @classmethod
    def from_bytes(cls, data: bytes) -> RawPage:
        """Decode a raw-topic value; a DecodeError names the bad field."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise DecodeError("raw page value is not bytes", reason=Reason.BAD_ENVELOPE)
        head, newline, body = bytes(data).partition(b"\n")
        if not newline:
            raise DecodeError("no metadata line (expected JSON metadata, newline, body)",
                              reason=Reason.BAD_ENVELOPE)
        try:
            meta = orjson.loads(head)
        except orjson.JSONDecodeError:
            raise DecodeError("metadata line is not JSON", reason=Reason.BAD_ENVELOPE) from None
        if not isinstance(meta, dict):
            raise DecodeError("metadata is not an object", reason=Reason.BAD_ENVELOPE)
        version = req_int(meta, "v")
        if version != RAW_SCHEMA_VERSION:
            raise DecodeError(f"schema version {version} is not supported (expected {RAW_SCHEMA_VERSION})",
                              reason=Reason.UNSUPPORTED_SCHEMA, field="v")
        try:
            provider = Provider(req_str(meta, "provider"))
        except ValueError:
            raise DecodeError(f"unknown provider {meta.get('provider')!r:.40}", reason=Reason.BAD_FIELD,
                              field="provider") from None
        offset = meta.get("utc_offset_ms")
        return cls(
            provider=provider,
            data_type=req_str(meta, "data_type"),
            date=opt_str(meta, "date"),
            body=body,
            detail=opt_str(meta, "detail"),
            timezone=opt_str(meta, "timezone"),
            utc_offset_ms=None if offset is None else req_int(meta, "utc_offset_ms"),
            fetched_at=req_float(meta, "fetched_at") if meta.get("fetched_at") is not None else 0.0,
            request_id=str(meta.get("request_id") or ""),
            origin=str(meta.get("origin") or "api"),
            page_token=opt_str(meta, "page_token"),
        )

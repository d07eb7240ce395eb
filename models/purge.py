"""PurgeMarker: the record that carries a purge down the data path (``samples`` → ``intraday``).

The portal or ``wearables withdraw --purge`` puts one onto ``samples`` under the participant's
key, behind every batch of theirs already there. The daily agent deletes their day state,
tombstones their ``daily`` keys (those in its state and the ``dates`` given) and forwards the
marker to ``intraday``; the sink removes their rows from every table. Replayed, a marker
finds nothing left to remove. It shares its topics with ``SampleBatch``; :func:`is_purge_marker`
tells them apart by the first bytes, without decoding a batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import orjson

from models._validate import load_object, req_str
from models.errors import DecodeError, Reason

__all__ = ["PurgeMarker", "is_purge_marker"]

_PREFIX = b'{"purge_marker":1'


def is_purge_marker(value: bytes | None) -> bool:
    return value is not None and value.startswith(_PREFIX)


@dataclass(frozen=True, slots=True)
class PurgeMarker:
    """Remove everything of ``research_id``; ``dates`` (ISO) are days of theirs in the dataset."""

    research_id: str
    dates: tuple[str, ...] = ()

    def to_bytes(self) -> bytes:
        # "purge_marker" first: orjson keeps the order, and is_purge_marker reads it
        return orjson.dumps({"purge_marker": 1, "research_id": self.research_id, "dates": list(self.dates)})

    @classmethod
    def from_bytes(cls, data: bytes) -> PurgeMarker:
        record = load_object(data, "purge marker")
        dates = record.get("dates") or []
        if not isinstance(dates, list) or not all(isinstance(d, str) for d in dates):
            raise DecodeError("dates must be a list of ISO dates", reason=Reason.BAD_FIELD, field="dates")
        for day in dates:
            try:
                date.fromisoformat(day)
            except ValueError:
                raise DecodeError(f"{day[:20]!r} is not an ISO date", reason=Reason.BAD_FIELD, field="dates") from None
        return cls(research_id=req_str(record, "research_id"), dates=tuple(dates))

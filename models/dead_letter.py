"""DeadLetter: a record of the ``dlq`` topic. Nothing is dropped silently.

It carries the stage that gave up, a closed-vocabulary reason, a human-readable detail
(naming the bad field), the original key and the original bytes: for a whole page the page
itself, for rejected samples the vendor's JSON of exactly those samples.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import orjson

from models._validate import req_float, req_str
from models.errors import DecodeError, Reason

__all__ = ["DLQ_SCHEMA_VERSION", "DeadLetter"]

DLQ_SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Why something could not be used, and the bytes to reprocess it from.

    :param stage: the pipeline stage (``normalize``, ``dedup``, ``import``...).
    :param reason: the reason code.
    :param detail: one line for a human, e.g. ``activities-heart-intraday.dataset[3].value: expected a number``.
    :param key: the original record key (bytes).
    :param original: the original bytes (the page, or the rejected samples' JSON).
    :param topic: where the original came from.
    :param count: how many samples this letter stands for (1 for a whole record).
    :param at: when it was written (epoch seconds).
    """

    stage: str
    reason: Reason
    detail: str
    key: bytes | None = field(repr=False)
    original: bytes = field(repr=False)
    topic: str = ""
    count: int = 1
    at: float = 0.0

    def to_bytes(self) -> bytes:
        return orjson.dumps({
            "v": DLQ_SCHEMA_VERSION, "stage": self.stage, "reason": self.reason.value, "detail": self.detail,
            "key": None if self.key is None else base64.b64encode(self.key).decode(),
            "original": base64.b64encode(self.original).decode(), "topic": self.topic,
            "count": self.count, "at": self.at,
        })

    @classmethod
    def from_bytes(cls, data: bytes) -> DeadLetter:
        try:
            record: Any = orjson.loads(data)
            key = record.get("key")
            return cls(
                stage=req_str(record, "stage"), reason=Reason(req_str(record, "reason")),
                detail=str(record.get("detail") or ""),
                key=None if key is None else base64.b64decode(key),
                original=base64.b64decode(req_str(record, "original") if record.get("original") else ""),
                topic=str(record.get("topic") or ""), count=int(record.get("count") or 1),
                at=req_float(record, "at") if record.get("at") is not None else 0.0,
            )
        except (orjson.JSONDecodeError, ValueError, TypeError, AttributeError) as error:
            raise DecodeError(f"not a dead letter: {error}", reason=Reason.BAD_ENVELOPE) from None

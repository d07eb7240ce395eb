"""The one place that builds dead letters (nothing is dropped silently)."""

from __future__ import annotations

import time

from models.dead_letter import DeadLetter
from models.errors import DecodeError, Reason
from runtime.metrics import counter
from streams.normalize.base import Rejected

__all__ = ["DEAD_LETTERS", "for_error", "for_rejects"]

DEAD_LETTERS = counter("dead_letters_total", "Dead letters written, by stage and reason", ["stage", "reason"],
                       initial=[(stage, reason.value) for stage in ("normalize", "daily", "sink") for reason in Reason])


def for_error(stage: str, error: BaseException, *, key: bytes | None, original: bytes, topic: str) -> DeadLetter:
    """A whole record that could not be used: its original bytes and why."""
    reason = error.reason if isinstance(error, DecodeError) else Reason.INTERNAL_ERROR
    detail = str(error) if isinstance(error, DecodeError) else f"{type(error).__name__}: {error}"
    DEAD_LETTERS.labels(stage=stage, reason=reason.value).inc()
    return DeadLetter(stage=stage, reason=reason, detail=detail[:500], key=key, original=original,
                      topic=topic, count=1, at=time.time())


def for_rejects(stage: str, rejects: list[Rejected], *, key: bytes | None, topic: str) -> list[DeadLetter]:
    """Rejected samples of one page: one letter per reason, holding exactly those samples."""
    letters = []
    for reject in rejects:
        DEAD_LETTERS.labels(stage=stage, reason=reject.reason.value).inc()
        letters.append(DeadLetter(stage=stage, reason=reject.reason, detail=reject.detail, key=key,
                                  original=reject.original, topic=topic, count=reject.count, at=time.time()))
    return letters

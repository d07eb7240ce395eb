"""The one place that builds dead letters (nothing is dropped silently), and that says which
errors are not the record's fault (:func:`is_infrastructure`): those stop the worker instead."""

from __future__ import annotations

import time

from aiokafka.errors import KafkaError
from faust.exceptions import ProducerSendError

from models.dead_letter import DeadLetter
from models.errors import DecodeError, Reason
from runtime.metrics import counter
from streams.normalize.base import Rejected

__all__ = ["DEAD_LETTERS", "for_error", "for_rejects", "is_infrastructure"]

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


#: How rocksdict reports a damaged or unreadable store: a bare ``Exception`` with RocksDB's status text.
_STORE_FAILURES = ("Corruption:", "IO error:")


def is_infrastructure(error: BaseException) -> bool:
    """Whether ``error`` is the pipeline's failure rather than the record's: Kafka (a send that
    failed, ``ProducerSendError``), the disk, or a damaged RocksDB store.

    Such a record is not dead-lettered: with the store or the producer broken every record would
    be, and a record whose output was never delivered must not be acknowledged either. The agent
    stops the worker instead, and its records are read again after the restart.
    """
    if isinstance(error, KafkaError | ProducerSendError | OSError):
        return True
    return type(error) is Exception and str(error).startswith(_STORE_FAILURES)

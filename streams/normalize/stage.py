"""The normalize stage for raw records: decode, normalize, and say what to send where.

Pure (no Faust, no I/O) and total: whatever the bytes, it returns records to publish and
never raises, so one bad page cannot stop the agent or take good pages down with it. Many
records go through together (``normalize_records``): that is what makes it fast.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from models.dead_letter import DeadLetter
from models.errors import DecodeError, Reason
from models.providers import Provider
from models.raw import RawPage
from runtime.metrics import counter, histogram
from streams.dead_letters import for_error, for_rejects
from streams.normalize import Normalized, normalize_pages
from streams.normalize.limits import check_body, check_size

__all__ = ["STAGE", "RawRecord", "StageOutput", "normalize_record", "normalize_records"]

logger = logging.getLogger(__name__)

STAGE = "normalize"

#: How much of a page over the byte limit its dead letter keeps: enough to see what it was.
_KEPT_OF_TOO_LARGE = 64 << 10

_SAMPLE_REASONS = (Reason.NOT_A_NUMBER, Reason.HR_OUT_OF_RANGE, Reason.NEGATIVE_STEPS, Reason.STEPS_PER_MINUTE_TOO_HIGH,
                   Reason.NONEXISTENT_LOCAL_TIME)
PAGES = counter("normalize_pages_total", "Raw pages normalized, by provider and outcome", ["provider", "outcome"],
                initial=[(p.value, o) for p in Provider for o in ("normalized", "dead_letter")])
SAMPLES_OUT = counter("normalize_samples_total", "Samples accepted into batches", ["provider", "metric"])
SAMPLES_REJECTED = counter("normalize_samples_rejected_total", "Samples rejected", ["provider", "reason"],
                           initial=[(p.value, r.value) for p in Provider for r in _SAMPLE_REASONS])
BATCHES_OUT = counter("normalize_batches_total", "Sample batches produced", ["provider", "metric"])
SECONDS = histogram("normalize_page_seconds", "Time to normalize one page", ["provider"],
                    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0))


@dataclass(slots=True)
class StageOutput:
    """Records to publish for one raw record: (key, value) batches and dead letters.

    :param batches: ``(research_id, SampleBatch bytes)`` for the ``samples`` topic.
    :param letters: dead letters for ``dlq``: the whole record, or its rejected samples by reason.
    :param samples, rejected, input_samples: the page's accounting (samples + rejected = input).
    """

    batches: list[tuple[bytes, bytes]] = field(default_factory=list)
    letters: list[DeadLetter] = field(default_factory=list)
    samples: int = 0
    rejected: int = 0
    input_samples: int = 0


@dataclass(frozen=True, slots=True)
class RawRecord:
    """A record of a ``raw.<provider>`` topic: its key (the research id), value (a RawPage) and topic."""

    key: bytes | None
    value: bytes | None
    topic: str


def normalize_record(key: bytes | None, value: bytes | None, *, topic: str, secret: bytes) -> StageOutput:
    """Normalize one ``raw.<provider>`` record into sample batches and dead letters."""
    return normalize_records([RawRecord(key, value, topic)], secret=secret)[0]


def normalize_records(records: Sequence[RawRecord], *, secret: bytes) -> list[StageOutput]:
    """Normalize many records in one vectorised pass: one output per record, in order.

    A page over a limit of ``limits.py`` (bytes, JSON depth) is a dead letter before any parsing.
    Should the shared pass fail on something no page check caught, every record is redone
    alone, so that one bad page costs its own dead letter and nothing else. The pass holds all
    of ``records`` at once: callers bound it by bytes with ``limits.byte_batches``.
    """
    started = time.perf_counter()
    outputs = [StageOutput() for _ in records]
    decoded: list[tuple[int, RawPage, str]] = []
    for i, record in enumerate(records):
        try:
            check_size(len(record.value or b""))  # before even the envelope is read
            page = RawPage.from_bytes(record.value or b"")
        except DecodeError as error:
            _dead_letter(outputs[i], record, error, _provider_of(record.topic))
            continue
        try:
            check_body(page.body)  # before orjson or Polars touch the body
        except DecodeError as error:
            _dead_letter(outputs[i], record, error, page.provider.value)
            continue
        decoded.append((i, page, _research_id(record.key)))
    try:
        results = normalize_pages([(page, research_id) for _, page, research_id in decoded], secret=secret)
    except BaseException as error:  # a Rust panic inside Polars surfaces as pyo3's PanicException
        if isinstance(error, KeyboardInterrupt | SystemExit | GeneratorExit | asyncio.CancelledError):
            raise
        if len(decoded) == 1:
            i, page, _ = decoded[0]
            logger.exception("normalize failed unexpectedly on %s (%d bytes)", records[i].topic,
                             len(records[i].value or b""))
            _dead_letter(outputs[i], records[i], error, page.provider.value)
            return outputs
        for i, _, _ in decoded:
            outputs[i] = normalize_records([records[i]], secret=secret)[0]
        return outputs
    share = (time.perf_counter() - started) / max(len(decoded), 1)
    for (i, page, _), result in zip(decoded, results, strict=True):
        if isinstance(result, DecodeError):
            _dead_letter(outputs[i], records[i], result, page.provider.value)
        else:
            _accept(outputs[i], records[i], page.provider.value, result)
            SECONDS.labels(provider=page.provider.value).observe(share)
    return outputs


def _accept(output: StageOutput, record: RawRecord, provider: str, result: Normalized) -> None:
    for batch in result.batches:
        output.batches.append((batch.research_id.encode(), batch.to_bytes()))
        SAMPLES_OUT.labels(provider=provider, metric=batch.metric.value).inc(len(batch))
        BATCHES_OUT.labels(provider=provider, metric=batch.metric.value).inc()
    output.letters += for_rejects(STAGE, result.rejects, key=record.key, topic=record.topic)
    for reject in result.rejects:
        SAMPLES_REJECTED.labels(provider=provider, reason=reject.reason.value).inc(reject.count)
    output.samples, output.rejected, output.input_samples = result.samples, result.rejected, result.input_samples
    PAGES.labels(provider=provider, outcome="normalized").inc()


def _provider_of(topic: str) -> str:
    """The provider a raw topic is for (``<prefix>raw.<provider>``), when its page cannot say."""
    name = topic.rpartition("raw.")[2]
    return name if name in {p.value for p in Provider} else "unknown"


def _dead_letter(output: StageOutput, record: RawRecord, error: BaseException, provider: str) -> None:
    original = record.value or b""
    if isinstance(error, DecodeError) and error.reason is Reason.PAGE_TOO_LARGE:
        original = original[:_KEPT_OF_TOO_LARGE]  # the whole page could not be sent to dlq either
    output.letters.append(for_error(STAGE, error, key=record.key, original=original, topic=record.topic))
    PAGES.labels(provider=provider, outcome="dead_letter").inc()


def _research_id(key: bytes | None) -> str:
    """The record key as text (non-ASCII bytes replaced); ``normalize_pages`` checks it, once."""
    return (key or b"").decode("ascii", errors="replace")

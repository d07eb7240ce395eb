"""The normalize stage for one raw record: decode, normalize, and say what to send where.

Pure (no Faust, no I/O) and total: whatever the bytes, it returns records to publish and
never raises, so one bad page cannot stop the agent or take good pages down with it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from models.dead_letter import DeadLetter
from models.errors import DecodeError, Reason
from models.raw import RawPage
from runtime.metrics import counter, histogram
from streams.dead_letters import for_error, for_rejects
from streams.normalize import normalize

__all__ = ["STAGE", "StageOutput", "normalize_record"]

logger = logging.getLogger(__name__)

STAGE = "normalize"

PAGES = counter("normalize_pages_total", "Raw pages normalized, by provider and outcome", ["provider", "outcome"])
SAMPLES_OUT = counter("normalize_samples_total", "Samples accepted into batches", ["provider", "metric"])
SAMPLES_REJECTED = counter("normalize_samples_rejected_total", "Samples rejected", ["provider", "reason"])
BATCHES_OUT = counter("normalize_batches_total", "Sample batches produced", ["provider", "metric"])
SECONDS = histogram("normalize_page_seconds", "Time to normalize one page", ["provider"],
                    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0))


@dataclass(slots=True)
class StageOutput:
    """Records to publish for one raw record: (key, value) batches and dead letters."""

    batches: list[tuple[bytes, bytes]] = field(default_factory=list)
    letters: list[DeadLetter] = field(default_factory=list)
    samples: int = 0
    rejected: int = 0
    input_samples: int = 0


def normalize_record(key: bytes | None, value: bytes | None, *, topic: str, secret: bytes) -> StageOutput:
    """Normalize one ``raw.<provider>`` record into sample batches and dead letters."""
    started = time.perf_counter()
    output = StageOutput()
    original = value or b""
    provider = "unknown"
    try:
        research_id = _research_id(key)
        page = RawPage.from_bytes(original)
        provider = page.provider.value
        result = normalize(page, research_id, secret=secret)
    except BaseException as error:  # every failure becomes a dead letter, never a crash
        if isinstance(error, KeyboardInterrupt | SystemExit | GeneratorExit | asyncio.CancelledError):
            raise
        # BaseException: a Rust panic inside Polars surfaces as pyo3's PanicException.
        if not isinstance(error, DecodeError):
            logger.exception("normalize failed unexpectedly on %s (%d bytes)", topic, len(original))
        output.letters.append(for_error(STAGE, error, key=key, original=original, topic=topic))
        PAGES.labels(provider=provider, outcome="dead_letter").inc()
        return output
    for batch in result.batches:
        output.batches.append((batch.research_id.encode(), batch.to_bytes()))
        SAMPLES_OUT.labels(provider=provider, metric=batch.metric.value).inc(len(batch))
        BATCHES_OUT.labels(provider=provider, metric=batch.metric.value).inc()
    output.letters += for_rejects(STAGE, result.rejects, key=key, topic=topic)
    for reject in result.rejects:
        SAMPLES_REJECTED.labels(provider=provider, reason=reject.reason.value).inc(reject.count)
    output.samples, output.rejected, output.input_samples = result.samples, result.rejected, result.input_samples
    PAGES.labels(provider=provider, outcome="normalized").inc()
    SECONDS.labels(provider=provider).observe(time.perf_counter() - started)
    return output


def _research_id(key: bytes | None) -> str:
    try:
        research_id = (key or b"").decode("ascii")
    except UnicodeDecodeError:
        research_id = ""
    if not research_id or not research_id.isalnum():
        raise DecodeError("record key is not a research_id", reason=Reason.BAD_KEY, field="key")
    return research_id

"""The normalize agent: ``raw.<provider>`` pages → ``samples`` batches, the unusable → ``dlq``."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from models.providers import Provider
from models.topics import raw_topic_suffix
from runtime.metrics import counter
from runtime.purges import SKIPPED
from streams.normalize.limits import byte_batches
from streams.normalize.stage import STAGE, RawRecord, normalize_records
from streams.progress import Progress

if TYPE_CHECKING:
    import faust
    from faust.types import EventT, StreamT

    from runtime.purges import PurgeList
    from runtime.settings import Settings

__all__ = ["BATCH_ERRORS", "register_normalize"]

logger = logging.getLogger(__name__)

BATCH_ERRORS = counter("agent_batch_errors_total", "Agent batches that raised", ["stage"],
                       initial=[("normalize",), ("daily",)])


def register_normalize(app: faust.App, settings: Settings, progress: Progress, purges: PurgeList) -> None:
    """Declare the normalize agent and its topics on ``app``; pages of ``purges`` are skipped."""
    secret = settings.require_secret_key()
    raw_names = [settings.topic(raw_topic_suffix(p)) for p in Provider]
    raw_topics = app.topic(*raw_names, key_serializer="raw", value_serializer="raw")
    samples = app.topic(settings.topic("samples"), key_serializer="raw", value_serializer="raw")
    dlq = app.topic(settings.topic("dlq"), key_serializer="raw", value_serializer="raw")

    @app.agent(raw_topics, name="normalize", concurrency=1)
    async def normalize_pages(stream: StreamT[bytes]) -> None:
        await purges.ready.wait()  # a replay must not bring a purged participant back
        async for events in stream.take_events(500, within=0.2):  # type: ignore[attr-defined]  # faust's StreamT lacks take_events (Stream has it)
            try:
                await _normalize_events(events)
            except Exception:  # e.g. the producer failing; never kill the agent
                BATCH_ERRORS.labels(stage=STAGE).inc()
                logger.exception("normalize batch of %d events failed", len(events))

    async def _normalize_events(events: list[EventT[bytes]]) -> None:
        records = [RawRecord(e.message.key, e.message.value, e.message.topic) for e in events
                   if not purges.is_purged(e.message.key)]
        if len(records) < len(events):
            SKIPPED.labels(stage=STAGE).inc(len(events) - len(records))
        for part in byte_batches(records):  # memory bounded by bytes: a 1-sec day is ~50x a minute page
            await _normalize_part(part)

    async def _normalize_part(records: list[RawRecord]) -> None:
        # Off the event loop: Polars releases the GIL, so the loop keeps producing and fetching meanwhile.
        outputs = await asyncio.to_thread(normalize_records, records, secret=secret)
        for record, output in zip(records, outputs, strict=True):
            for key, value in output.batches:
                await samples.send(key=key, value=value)
            for letter in output.letters:
                await dlq.send(key=record.key, value=letter.to_bytes())
            progress.add("raw_pages")
            progress.add("batches_out", len(output.batches))
            progress.add("samples", output.samples)
            progress.add("rejected", output.rejected)
            progress.add("dead_letters", len(output.letters))

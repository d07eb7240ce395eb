"""The normalize agent: ``raw.<provider>`` pages → ``samples`` batches, the unusable → ``dlq``.

How a take is confirmed, halted or recovered is shared with the daily agent
(``streams/agents/takes.py``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from models.providers import Provider
from models.topics import raw_topic_suffix
from runtime.purges import SKIPPED
from streams.agents.takes import Deliveries, Events, run_takes
from streams.dead_letters import for_error
from streams.normalize.limits import byte_batches
from streams.normalize.stage import STAGE, RawRecord, normalize_records
from streams.progress import Progress

if TYPE_CHECKING:
    import faust
    from faust.types import EventT, StreamT

    from runtime.purges import PurgeList
    from runtime.settings import Settings

__all__ = ["register_normalize"]

logger = logging.getLogger(__name__)



def register_normalize(app: faust.App, settings: Settings, progress: Progress, purges: PurgeList) -> None:
    """Declare the normalize agent and its topics on ``app``; pages of ``purges`` are skipped."""
    secret = settings.require_secret_key()
    raw_names = [settings.topic(raw_topic_suffix(p)) for p in Provider]
    raw_topics = app.topic(*raw_names, key_serializer="raw", value_serializer="raw")
    samples = app.topic(settings.topic("samples"), key_serializer="raw", value_serializer="raw")
    dlq = app.topic(settings.topic("dlq"), key_serializer="raw", value_serializer="raw")
    sent = Deliveries()

    @app.agent(raw_topics, name="normalize", concurrency=1)
    async def normalize_pages(stream: StreamT[bytes]) -> None:
        await purges.ready.wait()  # a replay must not bring a purged participant back
        takes = stream.take_events(500, within=0.2)  # type: ignore[attr-defined]  # faust's StreamT lacks take_events (Stream has it)
        await run_takes(app, STAGE, takes, sent, process=_normalize_events, recover=_dead_letter_take)

    async def _dead_letter_take(events: Events, error: Exception) -> None:
        # normalize_records redoes a failed pass page by page; a take that still fails is a bug elsewhere
        logger.exception("normalize take of %d events failed; its pages go to the dlq", len(events))
        for event in events:
            await sent.send(dlq, key=event.message.key, value=for_error(
                STAGE, error, key=event.message.key, original=event.message.value or b"",
                topic=event.message.topic).to_bytes())

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
                await sent.send(samples, key=key, value=value)
            for letter in output.letters:
                await sent.send(dlq, key=record.key, value=letter.to_bytes())
            progress.add("raw_pages")
            progress.add("batches_out", len(output.batches))
            progress.add("samples", output.samples)
            progress.add("rejected", output.rejected)
            progress.add("dead_letters", len(output.letters))

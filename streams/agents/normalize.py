"""The normalize agent: ``raw.<provider>`` pages → ``samples`` batches, the unusable → ``dlq``.

Also the agents' shared failure handling: :class:`Deliveries` (a take ends only once Kafka has
confirmed every record it sent) and :func:`halt` (a failure that is not the record's fault, see
``streams.dead_letters.is_infrastructure``, stops the worker with the take unacknowledged).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from models.providers import Provider
from models.topics import raw_topic_suffix
from runtime.metrics import counter, gauge
from runtime.purges import SKIPPED
from streams.dead_letters import for_error, is_infrastructure
from streams.normalize.limits import byte_batches
from streams.normalize.stage import STAGE, RawRecord, normalize_records
from streams.progress import Progress

if TYPE_CHECKING:
    import faust
    from faust.types import EventT, StreamT, TopicT

    from runtime.purges import PurgeList
    from runtime.settings import Settings

__all__ = ["BATCH_ERRORS", "LAST_EVENT", "Deliveries", "halt", "register_normalize"]

logger = logging.getLogger(__name__)

BATCH_ERRORS = counter("agent_batch_errors_total", "Agent batches that raised", ["stage"],
                       initial=[("normalize",), ("daily",)])
#: ``time() - wearables_worker_last_event_timestamp_seconds`` is how long an agent has been idle:
#: with consumer lag above zero, a worker that stopped processing.
LAST_EVENT = gauge("worker_last_event_timestamp_seconds", "When an agent of this worker last finished a take "
                   "of events (epoch seconds), per stage", ["stage"])


class Deliveries:
    """The delivery futures of what one take sent; :meth:`confirm` before the take is acknowledged.

    ``await topic.send(...)`` returns once the record is queued in the producer; the record is
    delivered when the future it returns resolves, and a failure is only logged by Faust. Offsets
    are committed for acknowledged events, so a take is acknowledged only once its sends are
    confirmed (needs ``stream_publish_on_commit`` off, Faust's default: with it on, these futures
    would resolve only at the commit).
    """

    def __init__(self) -> None:
        self._pending: list[Awaitable[Any]] = []

    async def send(self, topic: TopicT, *, key: bytes | None, value: bytes | None) -> None:
        self._pending.append(await topic.send(key=key, value=value))

    async def confirm(self) -> None:
        """Wait until every send so far is delivered; raise the first failure."""
        pending, self._pending = self._pending, []
        for future in pending:  # in order; most are done once the first is (one batch per partition)
            await future


async def halt(app: faust.App, stage: str, events: Sequence[EventT[bytes]], error: BaseException) -> NoReturn:
    """Stop the worker over an infrastructure failure without acknowledging ``events``.

    Each event keeps one reference, so no ack (the take's own, at the end of Faust's
    ``take_events``) marks it done and its offset is never committed. The app is crashed before
    the error is raised, so that no later take is acknowledged past them either; the worker then
    exits (``streams.runner``), and after its restart the events are read again.
    """
    for event in events:
        event.message.incref()
    BATCH_ERRORS.labels(stage=stage).inc()
    logger.error("%s take of %d events hit an infrastructure failure (%s); stopping the worker, the take "
                 "is read again after the restart", stage, len(events), type(error).__name__)
    await app.crash(error)
    raise error


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
        async for events in stream.take_events(500, within=0.2):  # type: ignore[attr-defined]  # faust's StreamT lacks take_events (Stream has it)
            try:
                try:
                    await _normalize_events(events)
                except Exception as error:
                    if is_infrastructure(error):
                        raise
                    # normalize_records redoes a failed pass page by page; this is a bug elsewhere
                    BATCH_ERRORS.labels(stage=STAGE).inc()
                    logger.exception("normalize take of %d events failed; its pages go to the dlq", len(events))
                    for event in events:
                        await sent.send(dlq, key=event.message.key, value=for_error(
                            STAGE, error, key=event.message.key, original=event.message.value or b"",
                            topic=event.message.topic).to_bytes())
                await sent.confirm()  # before take_events acknowledges the take
            except Exception as error:
                if is_infrastructure(error):
                    await halt(app, STAGE, events, error)
                raise
            LAST_EVENT.labels(stage=STAGE).set_to_current_time()

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

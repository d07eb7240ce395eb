"""How an agent works through its takes of events: what it sent is confirmed before a take is
acknowledged, a failure that is Kafka's or the store's halts the worker with the take
unacknowledged, and any other failure of a take is the agent's to recover from (``recover``: the
daily agent redoes the take record by record, normalize dead-letters it), so a take never ends
half done and unnoticed."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from runtime.metrics import counter, gauge
from streams.dead_letters import is_infrastructure

if TYPE_CHECKING:
    import faust
    from faust.types import EventT, TopicT

__all__ = ["BATCH_ERRORS", "LAST_EVENT", "Deliveries", "halt", "run_takes"]

logger = logging.getLogger(__name__)

Events = list["EventT[bytes]"]


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


async def run_takes(app: faust.App, stage: str, takes: AsyncIterable[Events], sent: Deliveries, *,
                    process: Callable[[Events], Awaitable[None]],
                    recover: Callable[[Events, Exception], Awaitable[None]]) -> None:
    """Each take: ``process`` it; if that raises (not Kafka's or the store's fault), count it and
    ``recover``; confirm what was sent; then mark the stage live. An infrastructure failure
    anywhere halts the worker with the take unacknowledged."""
    async for events in takes:
        try:
            try:
                await process(events)
            except Exception as error:
                if is_infrastructure(error):
                    raise
                BATCH_ERRORS.labels(stage=stage).inc()
                await recover(events, error)
            await sent.confirm()  # before take_events acknowledges the take
        except Exception as error:
            if is_infrastructure(error):
                await halt(app, stage, events, error)
            raise
        LAST_EVENT.labels(stage=stage).set_to_current_time()

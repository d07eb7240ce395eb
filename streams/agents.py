"""Agent bodies: take a batch of events, do vectorised work, count, send.

Each body catches errors per batch (an exception inside a Faust agent acks and skips the
event; research/faust.md §3), and tables written inside ``take_events`` use the partitioner.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import TYPE_CHECKING

from models.providers import Provider
from models.topics import raw_topic_suffix
from runtime.metrics import counter
from streams.event_context import as_current_event, by_partition
from streams.progress import Progress

if TYPE_CHECKING:
    import faust
    from faust.types import EventT, StreamT

    from runtime.settings import Settings

__all__ = ["TABLES", "intake_totals", "register_agents"]

logger = logging.getLogger(__name__)

#: Tables of this app, by name (their changelog topics are pre-created from this list).
TABLES: tuple[str, ...] = ("raw_intake",)

RAW_PAGES = counter("raw_pages_total", "Raw vendor pages consumed by the worker", ["provider"])
RAW_BYTES = counter("raw_bytes_total", "Bytes of raw vendor pages consumed by the worker", ["provider"])
BATCH_ERRORS = counter("agent_batch_errors_total", "Agent batches that raised", ["stage"])


def register_agents(app: faust.App, settings: Settings, progress: Progress) -> None:
    """Declare this app's topics, tables and agents on ``app``."""
    provider_by_topic = {settings.topic(raw_topic_suffix(p)): p for p in Provider}
    raw_topics = app.topic(*provider_by_topic, key_serializer="raw", value_serializer="raw")
    intake = app.Table("raw_intake", default=int, partitions=settings.partitions,
                       help="Raw pages consumed per provider (durable across restarts)")

    @app.agent(raw_topics, name="raw-intake", concurrency=1)
    async def raw_intake(stream: StreamT[bytes]) -> None:
        async for events in stream.take_events(2000, within=0.2):
            try:
                for partition, group in by_partition(events).items():
                    with as_current_event(group[-1]):
                        _tally(group, partition)
                progress.add("raw_pages", len(events))
            except Exception:  # one bad batch must not stop the agent
                BATCH_ERRORS.labels(stage="intake").inc()
                logger.exception("raw-intake batch of %d events failed", len(events))

    def _tally(group: list[EventT[bytes]], partition: int) -> None:
        pages: Counter[Provider] = Counter()
        size: Counter[Provider] = Counter()
        for event in group:
            provider = provider_by_topic[event.message.topic]
            pages[provider] += 1
            size[provider] += len(event.value or b"")
        for provider, count in pages.items():
            # Keyed by partition too: a table key must live on one partition only.
            intake[f"{provider.value}|{partition}"] += count
            RAW_PAGES.labels(provider=provider.value).inc(count)
            RAW_BYTES.labels(provider=provider.value).inc(size[provider])


def intake_totals(items: dict[str, int]) -> dict[str, int]:
    """Pages per provider from the ``raw_intake`` table's ``provider|partition`` keys."""
    totals: Counter[str] = Counter()
    for key, count in items.items():
        totals[key.partition("|")[0]] += count
    return dict(totals)

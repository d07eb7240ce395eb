"""The sink process: ``daily`` + ``intraday`` → the Parquet dataset (``wearables sink``).

At least once, and idempotent: records are gathered for ``WEARABLES_SINK_FLUSH_INTERVAL`` seconds,
written (whole-partition upserts, off the event loop), and only then are their offsets
committed. A crash between the write and the commit replays records whose rows are already
there, and the upsert leaves them as they are. A record that cannot be decoded goes to ``dlq``
with its reason; the records beside it are written.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

from models.audit import Action, Actor, AuditRecord, subject_of
from models.daily import DailySummary
from models.errors import DecodeError
from models.purge import PurgeMarker, is_purge_marker
from models.samples import SampleBatch
from runtime.kafka import make_consumer, make_producer
from runtime.metrics import counter, gauge, histogram
from runtime.purges import SKIPPED, PurgeList
from runtime.service import TaskService
from runtime.settings import Settings
from sinks.completeness import CompletenessMonitor
from sinks.dataset import Dataset
from sinks.writer import DatasetWriter, WriteReport
from streams.dead_letters import for_error

__all__ = ["STAGE", "SinkProgress", "SinkRunner"]

logger = logging.getLogger(__name__)

STAGE = "sink"
RECORDS = counter("sink_records_total", "Records the sink consumed, by topic and outcome", ["topic", "outcome"])
ROWS = counter("sink_rows_total", "Rows merged into the dataset, by table", ["table"])
ROWS_REMOVED = counter("sink_rows_removed_total", "Rows removed from the dataset because the vendor withdrew "
                       "the samples, by table", ["table"])
ROWS_PURGED = counter("sink_rows_purged_total", "Rows removed from the dataset because their participant's "
                      "data was purged, by table", ["table"])
PARTITIONS = counter("sink_partitions_written_total", "Partition files written (whole-partition upserts)")
FLUSH_SECONDS = histogram("sink_flush_seconds", "Time to write one flush to the dataset",
                          buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0))
LAST_FLUSH = gauge("sink_last_flush_timestamp_seconds", "When the sink last wrote to the dataset")


@dataclass(slots=True)
class SinkProgress:
    records: int = 0
    dead_letters: int = 0
    flushes: int = 0
    rows: dict[str, int] = field(default_factory=dict)


class SinkRunner(TaskService):
    """Consume ``daily`` and ``intraday`` as consumer group ``<prefix>sink`` and write the dataset.

    A :class:`~runtime.service.Service`: ``wearables sink`` serves it until stopped; the demo,
    the replay and tests ``drain()`` it (run until nothing arrived for ``idle_exit`` seconds).

    :param location: the dataset (a path or object-store URL); default ``settings.dataset_location``.
    :param group: the consumer group; another group reads everything again.
    :param idle_exit: end on its own once nothing arrived for this many seconds (None: never).
    :param on_flush: called with the progress after every write.
    """

    name = "sink"

    def __init__(self, settings: Settings, *, bootstrap: str | None = None, location: str | None = None,
                 group: str | None = None, idle_exit: float | None = None,
                 on_flush: Callable[[SinkProgress], None] | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.bootstrap = bootstrap
        self.dataset = Dataset(location or settings.dataset_location)
        self.writer = DatasetWriter(self.dataset)
        self.completeness = CompletenessMonitor(self.dataset)  # the cohort gauges, refreshed after flushes
        self.progress = SinkProgress()
        self._daily = settings.topic("daily")
        self._intraday = settings.topic("intraday")
        self._group = group or f"{settings.kafka.topic_prefix}sink"
        self._idle_exit, self._on_flush = idle_exit, on_flush
        self._consumer: AIOKafkaConsumer | None = None  # set while consuming
        self.purges = PurgeList(settings.require_secret_key())

    def ready(self) -> bool:
        # joined: the group gave this member its partitions (empty again during a rebalance)
        return super().ready() and self._consumer is not None and bool(self._consumer.assignment())

    async def drain(self) -> SinkProgress:
        """Run until idle for ``idle_exit`` seconds; the progress."""
        assert self._idle_exit is not None, "drain() needs idle_exit"
        async with self.running():
            await self.wait()
        return self.progress

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set, or (``idle_exit``) until nothing arrived for that many seconds."""
        consumer = make_consumer(self.settings, self._daily, self._intraday, bootstrap=self.bootstrap,
                                 group_id=self._group, max_poll_records=2000,
                                 fetch_max_bytes=64 << 20, max_partition_fetch_bytes=16 << 20)
        producer = make_producer(self.settings, self.bootstrap)
        follower = asyncio.create_task(self.purges.follow(self.settings, self.bootstrap, stop))
        await self.purges.ready.wait()  # a group reading again must not bring a purged participant back
        await consumer.start()
        await producer.start()
        self._consumer = consumer
        try:
            quiet_since = time.monotonic()
            while not stop.is_set():
                records = await self._gather(consumer, stop)
                if records:
                    quiet_since = time.monotonic()
                    await self._flush(records, producer)
                    await consumer.commit()
                    self.completeness.flushed()  # at most every 30 s, in a thread: the sink reads on
                    if self._on_flush:
                        self._on_flush(self.progress)
                elif self._idle_exit is not None and time.monotonic() - quiet_since >= self._idle_exit:
                    break
        finally:
            self._consumer = None
            follower.cancel()
            await self.completeness.aclose()
            await consumer.stop()
            await producer.stop()

    async def _gather(self, consumer: AIOKafkaConsumer, stop: asyncio.Event) -> list[ConsumerRecord]:
        deadline = time.monotonic() + self.settings.sink.flush_interval
        gathered: list[ConsumerRecord] = []
        while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
            batches = await consumer.getmany(timeout_ms=int(min(left, 0.5) * 1000))
            for records in batches.values():
                gathered += records
            if not batches and gathered:
                break  # caught up: write now rather than wait out the interval
        return gathered

    async def _flush(self, records: list[ConsumerRecord], producer: AIOKafkaProducer) -> None:
        summaries, batches, markers = [], [], []
        for record in records:
            if record.value is None:  # a tombstone on ``daily`` (a purge): the marker removes the rows
                RECORDS.labels(topic=_kind(record.topic, self._daily), outcome="tombstone").inc()
                continue
            value = record.value
            try:
                if is_purge_marker(value):
                    markers.append(PurgeMarker.from_bytes(value))
                    self.purges.add(markers[-1].research_id)
                elif record.topic == self._daily:
                    summaries.append(DailySummary.from_bytes(value))
                else:
                    batches.append(SampleBatch.from_bytes(value))
                RECORDS.labels(topic=_kind(record.topic, self._daily), outcome="written").inc()
            except DecodeError as error:
                RECORDS.labels(topic=_kind(record.topic, self._daily), outcome="dead_letter").inc()
                self.progress.dead_letters += 1
                letter = for_error(STAGE, error, key=record.key, original=value, topic=record.topic)
                await producer.send_and_wait(self.settings.topic("dlq"), letter.to_bytes(), key=record.key)
        summaries, batches = self._without_purged(summaries, batches)
        started = time.perf_counter()
        report: WriteReport = await asyncio.to_thread(self.writer.apply, summaries, batches)
        FLUSH_SECONDS.observe(time.perf_counter() - started)
        LAST_FLUSH.set_to_current_time()
        PARTITIONS.inc(report.partitions)
        for table, rows in report.rows.items():
            ROWS.labels(table=table).inc(rows)
            self.progress.rows[table] = self.progress.rows.get(table, 0) + rows
        for table, rows in report.removed.items():
            ROWS_REMOVED.labels(table=table).inc(rows)
        for marker in markers:
            await self._purge(marker, producer)
        self.progress.records += len(records)
        self.progress.flushes += 1

    def _without_purged(self, summaries: list[DailySummary], batches: list[SampleBatch]
                        ) -> tuple[list[DailySummary], list[SampleBatch]]:
        """Drop records of purged participants (also those ahead of their marker in this flush)."""
        kept_summaries = [s for s in summaries if not self.purges.is_purged(s.research_id)]
        kept_batches = [b for b in batches if not self.purges.is_purged(b.research_id)]
        skipped = len(summaries) - len(kept_summaries) + len(batches) - len(kept_batches)
        if skipped:
            SKIPPED.labels(stage=STAGE).inc(skipped)
        return kept_summaries, kept_batches

    async def _purge(self, marker: PurgeMarker, producer: AIOKafkaProducer) -> None:
        """Remove the participant's rows from every table and say what was removed on ``audit``."""
        removed = await asyncio.to_thread(self.writer.purge, marker.research_id)
        for table, rows in removed.items():
            ROWS_PURGED.labels(table=table).inc(rows)
        subject = subject_of(self.settings.require_secret_key(), marker.research_id)
        record = AuditRecord(subject, Action.REMOVED, Actor.SYSTEM, time.time(), "sink",
                             {table: rows for table, rows in removed.items() if rows})
        await producer.send_and_wait(self.settings.topic("audit"), record.to_bytes(), key=subject.encode())


def _kind(topic: str, daily: str) -> str:
    return "daily" if topic == daily else "intraday"

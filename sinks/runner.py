"""The sink process: ``daily`` + ``intraday`` → the Parquet dataset (``wearables sink``).

At least once, and idempotent: records are gathered for ``WEARABLES_SINK_FLUSH_INTERVAL`` seconds,
written (whole-partition upserts, off the event loop), and only then are their offsets
committed. A crash between the write and the commit replays records whose rows are already
there, and the upsert leaves them as they are. A record that cannot be decoded goes to ``dlq``
with its reason; the records beside it are written.

Failures of the write itself, by kind:

- **anything but an ``OSError``** (a record that decodes but cannot be written: a bug, an odd
  value): the flush is applied again in halves, down to single records, in arrival order, and
  only the records that fail alone go to ``dlq`` with ``internal_error``; the rest are written.
- **an ``OSError``** (the storage: a full disk, ENOSPC/EFBIG, permissions, an object store
  away): nothing is committed, the old files stay as they were (``Dataset.write`` leaves no
  temporary file), and the same flush is tried again with exponential backoff
  (``storage_backoff``), without exiting: a restart would only replay the same records into
  the same full disk. Meanwhile the consumer is paused but polled (it keeps its partitions),
  ``/readyz`` says not ready, ``wearables_sink_storage_blocked`` is 1 and
  ``wearables_sink_storage_errors_total`` counts the attempts; it resumes when space returns.
- **a partition file that does not read** (corrupt Parquet): moved aside, counted and rebuilt
  (``Dataset(quarantine=True)``, see sinks/dataset.py).
"""

from __future__ import annotations

import asyncio
import errno
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka.errors import CommitFailedError
from polars.exceptions import PanicException

from models.audit import Action, Actor, AuditRecord, subject_of
from models.daily import DailySummary
from models.errors import DecodeError
from models.purge import PurgeMarker, is_purge_marker
from models.samples import SampleBatch
from runtime.kafka import make_consumer, make_producer
from runtime.lost_logs import LostLogWatch
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
STORAGE_ERRORS = counter("sink_storage_errors_total", "Dataset writes that failed with a storage error "
                         "(OSError: a full disk, permissions); each is retried")
COMMITS_REFUSED = counter("sink_commits_refused_total", "Commits the consumer group refused (fenced member): "
                          "the records replay and are upserted again")
STORAGE_BLOCKED = gauge("sink_storage_blocked", "1 while the sink retries a flush the storage refused")

_T = TypeVar("_T")
#: What a record that decodes but cannot be written raises (a Polars panic is a BaseException);
#: an OSError is the storage's failure, not the record's, and is retried instead.
_RECORD_ERRORS = (Exception, PanicException)


class _Stopped(Exception):
    """Stopped while the storage refused the flush: nothing is committed, the records replay."""


@dataclass(frozen=True, slots=True)
class _Decoded:
    """A decoded record, with the record it came from (for its dead letter)."""

    record: ConsumerRecord
    value: DailySummary | SampleBatch


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
    #: seconds before the first retry of a flush the storage refused, and the most between two
    storage_backoff: tuple[float, float] = (1.0, 60.0)

    def __init__(self, settings: Settings, *, bootstrap: str | None = None, location: str | None = None,
                 group: str | None = None, idle_exit: float | None = None,
                 on_flush: Callable[[SinkProgress], None] | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.bootstrap = bootstrap
        self.dataset = Dataset(location or settings.dataset_location, quarantine=True)
        self.writer = DatasetWriter(self.dataset)
        self.completeness = CompletenessMonitor(self.dataset)  # the cohort gauges, refreshed after flushes
        self.progress = SinkProgress()
        self._daily = settings.topic("daily")
        self._intraday = settings.topic("intraday")
        self._group = group or f"{settings.kafka.topic_prefix}sink"
        self._idle_exit, self._on_flush = idle_exit, on_flush
        self._consumer: AIOKafkaConsumer | None = None  # set while consuming
        self.storage_blocked = False  # the storage refused the last write; the flush is being retried
        self.purges = PurgeList(settings.require_secret_key())

    def ready(self) -> bool:
        # joined: the group gave this member its partitions (empty again during a rebalance),
        # and the dataset takes writes
        return (super().ready() and self._consumer is not None and bool(self._consumer.assignment())
                and not self.storage_blocked)

    async def drain(self) -> SinkProgress:
        """Run until idle for ``idle_exit`` seconds; the progress."""
        assert self._idle_exit is not None, "drain() needs idle_exit"
        async with self.running():
            await self.wait()
        return self.progress

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set, or (``idle_exit``) until nothing arrived for that many seconds."""
        if removed := await asyncio.to_thread(self.dataset.remove_stale_temporaries):
            logger.info("sink: removed %d temporary file(s) of writes that never finished", removed)
        consumer = make_consumer(self.settings, self._daily, self._intraday, bootstrap=self.bootstrap,
                                 group_id=self._group, max_poll_records=2000,
                                 fetch_max_bytes=64 << 20, max_partition_fetch_bytes=16 << 20)
        producer = make_producer(self.settings, self.bootstrap)
        follower = asyncio.create_task(self.purges.follow(self.settings, self.bootstrap, stop))
        await self.purges.ready.wait()  # a group reading again must not bring a purged participant back
        await consumer.start()
        await producer.start()
        self._consumer = consumer
        watch = LostLogWatch(consumer, "sink")
        try:
            quiet_since = time.monotonic()
            while not stop.is_set():
                records = await self._gather(consumer, watch, stop)
                if records:
                    quiet_since = time.monotonic()
                    try:
                        await self._flush(records, producer, consumer, stop)
                    except _Stopped:
                        break  # the storage still refuses: commit nothing, the records replay next time
                    await self._commit(watch)
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

    @staticmethod
    async def _commit(watch: LostLogWatch) -> None:
        """Commit what was written, through the lost-log watch (never the offsets of a log the
        broker lost: ``runtime/lost_logs.py``). A commit the group refuses (this member was fenced:
        Kafka was out of reach longer than the session timeout, or the group rebalanced meanwhile)
        is dropped: the records replay from the last commit to whoever has their partitions, and
        writing them again changes nothing (rows are upserted by key). aiokafka rejoins at the next poll."""
        try:
            await watch.commit()
        except CommitFailedError:
            COMMITS_REFUSED.inc()
            logger.warning("the consumer group refused the sink's commit (fenced or rebalanced); the records "
                           "replay from the last commit and are upserted again")

    async def _gather(self, consumer: AIOKafkaConsumer, watch: LostLogWatch,
                      stop: asyncio.Event) -> list[ConsumerRecord]:
        deadline = time.monotonic() + self.settings.sink.flush_interval
        gathered: list[ConsumerRecord] = []
        while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
            batches = await consumer.getmany(timeout_ms=int(min(left, 0.5) * 1000))
            await watch.check()
            for records in batches.values():
                gathered += records
            if not batches and gathered:
                break  # caught up: write now rather than wait out the interval
        return gathered

    async def _flush(self, records: list[ConsumerRecord], producer: AIOKafkaProducer,
                     consumer: AIOKafkaConsumer, stop: asyncio.Event) -> None:
        """Decode, write and purge ``records``; raises _Stopped if stopped while the storage refuses."""
        items, markers = await self._decode(records, producer)
        items = self._without_purged(items)
        started = time.perf_counter()
        report = await self._until_stored(lambda: self._write(items, producer), consumer, stop)
        FLUSH_SECONDS.observe(time.perf_counter() - started)
        LAST_FLUSH.set_to_current_time()
        PARTITIONS.inc(report.partitions)
        for table, rows in report.rows.items():
            ROWS.labels(table=table).inc(rows)
            self.progress.rows[table] = self.progress.rows.get(table, 0) + rows
        for table, rows in report.removed.items():
            ROWS_REMOVED.labels(table=table).inc(rows)
        for marker in markers:
            await self._until_stored(functools.partial(self._purge, marker, producer), consumer, stop)
        self.progress.records += len(records)
        self.progress.flushes += 1

    async def _decode(self, records: list[ConsumerRecord], producer: AIOKafkaProducer
                      ) -> tuple[list[_Decoded], list[PurgeMarker]]:
        """The records decoded, in order, and the purge markers; what does not decode goes to ``dlq``."""
        items: list[_Decoded] = []
        markers: list[PurgeMarker] = []
        for record in records:
            if record.value is None:  # a tombstone on ``daily`` (a purge): the marker removes the rows
                RECORDS.labels(topic=_kind(record.topic, self._daily), outcome="tombstone").inc()
                continue
            value = record.value
            try:
                if is_purge_marker(value):
                    markers.append(PurgeMarker.from_bytes(value))
                    self.purges.add(markers[-1].research_id)
                    RECORDS.labels(topic=_kind(record.topic, self._daily), outcome="written").inc()
                elif record.topic == self._daily:  # counted once written (or dead-lettered then)
                    items.append(_Decoded(record, DailySummary.from_bytes(value)))
                else:
                    items.append(_Decoded(record, SampleBatch.from_bytes(value)))
            except DecodeError as error:
                await self._dead_letter(record, error, producer)
        return items, markers

    async def _write(self, items: Sequence[_Decoded], producer: AIOKafkaProducer) -> WriteReport:
        """Apply the records; the ones that fail on their own (not with an OSError) go to ``dlq``."""
        report, failed = await asyncio.to_thread(self._apply_isolating, items)
        for item, error in failed:
            await self._dead_letter(item.record, error, producer)
        offenders = {id(item) for item, _ in failed}
        for item in items:
            if id(item) not in offenders:
                RECORDS.labels(topic=_kind(item.record.topic, self._daily), outcome="written").inc()
        return report

    def _apply_isolating(self, items: Sequence[_Decoded]
                         ) -> tuple[WriteReport, list[tuple[_Decoded, BaseException]]]:
        """``writer.apply`` of all the records; if that raises (an OSError aside), of each half, and
        so on down to single records, in arrival order (a deletion must still see what came before
        it): what was written, and the records that fail alone. Applying again what part of a failed
        attempt wrote changes nothing (upserts), so only the offenders are missing in the end."""
        report = WriteReport()
        failed: list[tuple[_Decoded, BaseException]] = []

        def attempt(part: Sequence[_Decoded]) -> None:
            try:
                _add(report, self.writer.apply(*_split(part)))
            except OSError:
                raise  # the storage: the whole flush is retried
            except _RECORD_ERRORS as error:
                if len(part) == 1:
                    failed.append((part[0], error))
                    return
                if len(part) == len(items):  # once per flush: a type and a count, no record content
                    logger.warning("sink: a flush of %d records raised %s; writing it again in parts to find "
                                   "the records that fail", len(items), type(error).__name__)
                middle = len(part) // 2
                attempt(part[:middle])
                attempt(part[middle:])

        if items:
            attempt(items)
        return report, failed

    async def _until_stored(self, step: Callable[[], Awaitable[_T]], consumer: AIOKafkaConsumer,
                            stop: asyncio.Event) -> _T:
        """``step()``, tried again with backoff for as long as the storage refuses it (an OSError)."""
        delay, most = self.storage_backoff
        failures = 0
        while True:
            try:
                result = await step()
            except OSError as error:
                failures += 1
                STORAGE_ERRORS.inc()
                STORAGE_BLOCKED.set(1)
                self.storage_blocked = True
                logger.error("sink: the dataset refused a write (%s); nothing committed, the same flush is tried "
                             "again in %.1f s (attempt %d)", _describe(error), delay, failures)
                if not await self._hold(consumer, delay, stop):
                    raise _Stopped from None
                delay = min(delay * 2, most)
                continue
            if failures:
                logger.info("sink: the dataset takes writes again, after %d failed attempt(s)", failures)
                STORAGE_BLOCKED.set(0)
                self.storage_blocked = False
            return result

    @staticmethod
    async def _hold(consumer: AIOKafkaConsumer, seconds: float, stop: asyncio.Event) -> bool:
        """Wait ``seconds``; False if ``stop`` was set meanwhile. The consumer's partitions are
        paused and it is polled all the while: one that stops polling for ``max_poll_interval_ms``
        leaves its group, and the commit after the retry would fail."""
        deadline = time.monotonic() + seconds
        try:
            while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
                consumer.pause(*consumer.assignment())  # again: a rebalance may have assigned new ones
                fetched = await consumer.getmany(timeout_ms=int(min(left, 0.5) * 1000))
                for partition, records in fetched.items():  # from a partition not paused yet: read it later
                    consumer.seek(partition, records[0].offset)
        finally:
            consumer.resume(*consumer.assignment())
        return not stop.is_set()

    async def _dead_letter(self, record: ConsumerRecord, error: BaseException, producer: AIOKafkaProducer) -> None:
        RECORDS.labels(topic=_kind(record.topic, self._daily), outcome="dead_letter").inc()
        self.progress.dead_letters += 1
        letter = for_error(STAGE, error, key=record.key, original=record.value or b"", topic=record.topic)
        await producer.send_and_wait(self.settings.topic("dlq"), letter.to_bytes(), key=record.key)

    def _without_purged(self, items: list[_Decoded]) -> list[_Decoded]:
        """Drop records of purged participants (also those ahead of their marker in this flush)."""
        kept = []
        for item in items:
            if self.purges.is_purged(item.value.research_id):
                SKIPPED.labels(stage=STAGE).inc()
                RECORDS.labels(topic=_kind(item.record.topic, self._daily), outcome="written").inc()  # as before
            else:
                kept.append(item)
        return kept

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


def _split(items: Sequence[_Decoded]) -> tuple[list[DailySummary], list[SampleBatch]]:
    summaries = [i.value for i in items if isinstance(i.value, DailySummary)]
    batches = [i.value for i in items if isinstance(i.value, SampleBatch)]
    return summaries, batches


def _add(report: WriteReport, part: WriteReport) -> None:
    for table, rows in part.rows.items():
        report.rows[table] = report.rows.get(table, 0) + rows
    for table, rows in part.removed.items():
        report.removed[table] = report.removed.get(table, 0) + rows
    report.partitions += part.partitions


def _describe(error: OSError) -> str:
    """``ENOSPC: No space left on device``: the error's kind, not its file name or URL."""
    code = errno.errorcode.get(error.errno, type(error).__name__) if error.errno else type(error).__name__
    return f"{code}: {error.strerror}" if error.strerror else code

"""The participants whose data was purged: every consumer skips their records.

A purge leaves records of the participant inside the retention of ``raw.*``, ``samples`` and
``intraday``; a replay from the start, or a consumer group reading again, must not bring their
data back. Every consumer therefore holds a :class:`PurgeList`, read from the ``purge`` records
of the ``audit`` topic (``models/audit.py``) before it processes anything, and kept current
while it runs. The list holds keyed pseudonyms only (``subject_of``), never a research ID.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from models.audit import Action, AuditRecord, subject_of
from models.errors import DecodeError
from runtime.kafka import make_consumer
from runtime.lost_logs import LostLogWatch
from runtime.metrics import counter
from runtime.settings import Settings

__all__ = ["SKIPPED", "PurgeList"]

logger = logging.getLogger(__name__)

SKIPPED = counter("purged_records_skipped_total", "Records of purged participants skipped, by stage", ["stage"],
                  initial=[("normalize",), ("daily",), ("sink",)])

_CACHE_LIMIT = 200_000  # research IDs whose answer is remembered; cleared beyond (the answer is cheap to redo)


class PurgeList:
    """Which research IDs were purged. ``is_purged`` costs nothing while nobody was purged."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self._subjects: set[str] = set()
        self._answers: dict[str, bool] = {}
        self.ready = asyncio.Event()  # set once the audit log was read to its end

    def __len__(self) -> int:
        return len(self._subjects)

    def add(self, research_id: str) -> None:
        """Purged now (a marker seen before its audit record reached this consumer)."""
        self._add_subject(subject_of(self._secret, research_id))

    def _add_subject(self, subject: str) -> None:
        if subject not in self._subjects:
            self._subjects.add(subject)
            self._answers.clear()  # a remembered "no" may be a "yes" now

    def is_purged(self, research_id: str | bytes | None) -> bool:
        if not self._subjects or research_id is None:
            return False
        rid = research_id.decode() if isinstance(research_id, bytes) else research_id
        answer = self._answers.get(rid)
        if answer is None:
            if len(self._answers) >= _CACHE_LIMIT:
                self._answers.clear()
            answer = self._answers[rid] = subject_of(self._secret, rid) in self._subjects
        return answer

    async def follow(self, settings: Settings, bootstrap: str | None, stop: asyncio.Event) -> None:
        """Read ``audit`` from its start; ``ready`` once at its end; then keep reading until ``stop``.

        A broken connection is retried (the consumers wait for ``ready``, so giving up would stall them).
        """
        while not stop.is_set():
            try:
                await self._read_log(settings, bootstrap, stop)
            except (KafkaError, OSError) as error:
                logger.warning("reading the audit log failed (%s); retrying in 1 s", type(error).__name__)
                await asyncio.sleep(1.0)

    async def _read_log(self, settings: Settings, bootstrap: str | None, stop: asyncio.Event) -> None:
        partition = TopicPartition(settings.topic("audit"), 0)  # the catalogue gives ``audit`` one partition
        consumer = make_consumer(settings, bootstrap=bootstrap, group_id=None)
        await consumer.start()
        try:
            consumer.assign([partition])
            await consumer.seek_to_beginning(partition)
            end = (await consumer.end_offsets([partition]))[partition]
            watch = LostLogWatch(consumer, "purges")
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=500)
                await watch.check()
                for records in batches.values():
                    for record in records:
                        self._read(record.value)
                if not self.ready.is_set() and await consumer.position(partition) >= end:
                    self.ready.set()
        finally:
            await consumer.stop()

    def _read(self, value: bytes | None) -> None:
        try:
            record = AuditRecord.from_bytes(value or b"")
        except DecodeError as error:  # the log is ours; a bad entry is reported, never fatal
            logger.warning("unreadable audit record skipped (%s)", error.reason)
            return
        if record.action is Action.PURGE:
            self._add_subject(record.subject)

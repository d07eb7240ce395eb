"""Rewind a running consumer whose partitions lost their log under it.

Kafka answers a fetch past a partition's end with OFFSET_OUT_OF_RANGE, and the consumer resets
itself (``auto_offset_reset``). The embedded broker (Tansu) answers it with no records instead
(checked: a consumer seeked to 100 on a 5-record partition gets nothing, then nothing again when
5 more arrive). So when the embedded broker stops and loses every topic, a consumer that stays
up would wait at its old offset and silently pass over the first records the re-made topic gets:
fetch requests never carried out, summaries never written. The same holds on Kafka for a topic
deleted and re-created faster than the consumer noticed.

:class:`LostLogWatch` notices: every few seconds it compares each assigned partition's log end
with the next offset the consumer will read, and seeks a partition whose log now ends before
that back to its start (records read twice are harmless downstream: every stage is idempotent).

    watch = LostLogWatch(consumer, "sink")
    batches = await consumer.getmany(timeout_ms=500)
    watch.consumed(batches)
    rewound = await watch.check()    # the partitions sought back to their start, usually []
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from runtime.metrics import counter

__all__ = ["REWOUND", "LostLogWatch"]

logger = logging.getLogger(__name__)

REWOUND = counter("kafka_partitions_rewound_total",
                  "Partitions whose log ended before the consumer's offset (the broker lost it), read again "
                  "from their start", ["process"])


class LostLogWatch:
    """Seek a consumer back to the start of each partition whose log now ends before its offset.

    :param consumer: a started consumer (subscribed or assigned).
    :param process: who reads, for the log line and the metric's ``process`` label.
    :param interval: seconds between two looks at the log ends (one ListOffsets request each).
    """

    def __init__(self, consumer: AIOKafkaConsumer, process: str, *, interval: float = 2.0) -> None:
        self._consumer, self._process, self._interval = consumer, process, interval
        self._next: dict[TopicPartition, int] = {}
        self._checked = 0.0
        REWOUND.labels(process)  # exported at 0 from the start

    def consumed(self, batches: Mapping[TopicPartition, Sequence[ConsumerRecord]]) -> None:
        """Note the offsets read (the next one the consumer will ask for, per partition)."""
        for tp, records in batches.items():
            if records:
                self._next[tp] = records[-1].offset + 1

    async def check(self) -> list[TopicPartition]:
        """Rewind what lost its log (at most once per ``interval``); the partitions rewound."""
        if time.monotonic() - self._checked < self._interval:
            return []
        self._checked = time.monotonic()
        assigned = self._consumer.assignment()
        if not assigned:
            return []
        try:
            ends = await self._consumer.end_offsets(list(assigned))
        except (KafkaError, OSError):  # the broker is away: look again next time
            return []
        lost = []
        for tp in assigned:
            expected = await self._position(tp)
            if expected is not None and tp in ends and ends[tp] < expected:
                lost.append(tp)
        if lost:
            await self._consumer.seek_to_beginning(*lost)
            for tp in lost:
                self._next.pop(tp, None)
            REWOUND.labels(self._process).inc(len(lost))
            logger.warning("%s: %d partition(s) of %s end before the offset it had reached (the broker lost "
                           "them, or the topic was re-created); reading them again from their start",
                           self._process, len(lost), ", ".join(sorted({tp.topic for tp in lost})))
        for tp in set(self._next) - assigned:
            del self._next[tp]
        return lost

    async def _position(self, tp: TopicPartition) -> int | None:
        """The next offset to read: the one after the last record read, or (nothing read yet)
        the position it started from, if the consumer knows it already."""
        if tp in self._next:
            return self._next[tp]
        with contextlib.suppress(TimeoutError, KafkaError, AssertionError):
            return await asyncio.wait_for(self._consumer.position(tp), 0.5)
        return None

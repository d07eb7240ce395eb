"""Rewind a running consumer whose partitions lost their log under it.

Kafka answers a fetch past a partition's end with OFFSET_OUT_OF_RANGE, and the consumer resets
itself (``auto_offset_reset``). The embedded broker (Tansu) answers it with no records instead
(checked: a consumer seeked to 100 on a 5-record partition gets nothing, then nothing again when
5 more arrive). So when the embedded broker stops and loses every topic, a consumer that stays
up would wait at its old offset and silently pass over the first records the re-made topic gets:
fetch requests never carried out, summaries never written. The same holds on Kafka for a topic
deleted and re-created faster than the consumer noticed.

:class:`LostLogWatch` notices: every few seconds it reads each assigned partition's log end, and
seeks a partition whose end went backwards (a log only grows) back to its start; records read
twice are harmless downstream, every stage is idempotent. It compares ends with ends, not with
the consumer's position: Tansu reports a partition's end as its last record batch's base offset
+ 1, so a consumer that read a whole multi-record batch is legitimately past the reported end.
A log lost and regrown past its old end between two looks (2 s) would go unnoticed.

    watch = LostLogWatch(consumer, "sink")
    batches = await consumer.getmany(timeout_ms=500)
    rewound = await watch.check()    # the partitions sought back to their start, usually []
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from runtime.metrics import counter

__all__ = ["REWOUND", "LostLogWatch"]

logger = logging.getLogger(__name__)
_ASK_S = 2.0

REWOUND = counter("kafka_partitions_rewound_total",
                  "Partitions whose log end went backwards (the broker lost it, or the topic was "
                  "re-created), read again from their start", ["process"])


class LostLogWatch:
    """Seek a consumer back to the start of each partition whose log end went backwards.

    :param consumer: a started consumer (subscribed or assigned).
    :param process: who reads, for the log line and the metric's ``process`` label.
    :param interval: seconds between two looks at the log ends (one ListOffsets request each).
    """

    def __init__(self, consumer: AIOKafkaConsumer, process: str, *, interval: float = 2.0) -> None:
        self._consumer, self._process, self._interval = consumer, process, interval
        self._ends: dict[TopicPartition, int] = {}  # the highest end offset seen, per partition
        self._checked = 0.0
        REWOUND.labels(process)  # exported at 0 from the start

    async def check(self) -> list[TopicPartition]:
        """Rewind what lost its log (at most once per ``interval``); the partitions rewound."""
        if time.monotonic() - self._checked < self._interval:
            return []
        self._checked = time.monotonic()
        assigned = self._consumer.assignment()
        if not assigned:
            return []
        try:  # bounded: with a partition's leader unknown the request would wait its 40 s timeout
            ends = await asyncio.wait_for(self._consumer.end_offsets(list(assigned)), _ASK_S)
        except (KafkaError, OSError, TimeoutError):  # the broker is away: look again next time
            return []
        lost = [tp for tp, end in ends.items() if end < self._ends.get(tp, 0)]
        self._ends.update(ends)
        lost = [tp for tp in lost if tp in self._consumer.assignment()]  # a rebalance may have run meanwhile
        if lost:
            try:
                await self._consumer.seek_to_beginning(*lost)
            except KafkaError:  # IllegalStateError: moved to another member after all; its business now
                return []
            REWOUND.labels(self._process).inc(len(lost))
            logger.warning("%s: %d partition(s) of %s now end before where they ended (the broker lost them, or "
                           "the topic was re-created); reading them again from their start",
                           self._process, len(lost), ", ".join(sorted({tp.topic for tp in lost})))
        for tp in set(self._ends) - assigned:
            del self._ends[tp]  # another member's now: what it saw of them is its business
        return lost

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

Commits go through the watch too (:meth:`LostLogWatch.commit`), because a commit can carry the
lost log's offsets onto the new one. aiokafka retries a commit until the coordinator answers,
and builds each try with the group generation of that moment: a commit begun as the broker went
away waits out the outage, and once the member has rejoined it is accepted with the old offsets.
A partition the watch rewound but that got no new record keeps that stale commit, and the next
rebalance (the re-made topics' metadata brings one) seeks the member back past the new log's
first records, where the watch, seeing ends only grow, no longer looks. So a commit is bounded
in time (``_COMMIT_S``), follows a fresh look at the ends from the broker it goes to, and
leaves out what that look found lost; a rewind commits the partitions' start at once; and a
rewind that did not go through keeps the old ends, so the next look finds the loss again and no
commit goes out meanwhile.

    watch = LostLogWatch(consumer, "sink")
    batches = await consumer.getmany(timeout_ms=500)
    rewound = await watch.check()    # the partitions sought back to their start, usually []
    await watch.commit()             # what was consumed, unless the broker lost it meanwhile
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import IllegalOperation, KafkaError

from runtime.metrics import counter

__all__ = ["REWOUND", "LostLogWatch"]

logger = logging.getLogger(__name__)
_ASK_S = 2.0
_COMMIT_S = 5.0  # a commit that outlasts this is given up (its offsets are committed by a later one)

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

    @property
    def consumer(self) -> AIOKafkaConsumer:
        """The consumer watched (and committed through :meth:`commit`)."""
        return self._consumer

    async def check(self) -> list[TopicPartition]:
        """Rewind what lost its log (at most once per ``interval``); the partitions rewound."""
        if time.monotonic() - self._checked < self._interval:
            return []
        return await self.look() or []

    async def look(self) -> list[TopicPartition] | None:
        """Look at the log ends now and rewind what lost its log: the partitions rewound, or None
        when the ends could not be read or a rewind did not go through (the broker is away; the
        next look tries again, as the old ends are kept until the rewind succeeded)."""
        self._checked = time.monotonic()
        assigned = self._consumer.assignment()
        if not assigned:
            return []
        try:  # bounded: with a partition's leader unknown the request would wait its 40 s timeout
            ends = await asyncio.wait_for(self._consumer.end_offsets(list(assigned)), _ASK_S)
        except (KafkaError, OSError, TimeoutError):  # the broker is away: look again next time
            return None
        held = self._consumer.assignment()  # a rebalance may have run meanwhile
        lost = [tp for tp, end in ends.items() if end < self._ends.get(tp, 0) and tp in held]
        for tp in set(self._ends) - held:
            del self._ends[tp]  # another member's now: what it saw of them is its business
        self._ends.update({tp: end for tp, end in ends.items() if tp in held and tp not in lost})
        if not lost:
            return []
        if not await self._rewind(lost):
            return None
        self._ends.update({tp: ends[tp] for tp in lost})
        return lost

    async def commit(self, offsets: Mapping[TopicPartition, int] | None = None) -> list[TopicPartition] | None:
        """Commit ``offsets`` (None: every position consumed, a rewound partition's at its new
        start), after a fresh look at the log ends: the partitions that look found lost (rewound,
        and left out of ``offsets``), or None when the look or the commit did not go through in
        time (a later commit carries these offsets). Offsets of partitions no longer assigned are
        left out too. The commit's retries are given up after ``_COMMIT_S``; the one try already
        on the wire may still land, with this member's generation of the time, so never on a
        group it has rejoined since. ``CommitFailedError`` (the group refused it) is the caller's."""
        lost = await self.look()
        if lost is None:
            return None
        if offsets is not None:
            held = self._consumer.assignment()
            offsets = {tp: offset for tp, offset in offsets.items() if tp not in lost and tp in held}
            if not offsets:
                return lost
        try:
            await asyncio.wait_for(self._consumer.commit(offsets), _COMMIT_S)
        except TimeoutError:  # the coordinator is away: its retries must not land after a restart
            logger.warning("%s: a commit got no answer within %g s; it is given up, and the next one carries its "
                           "offsets", self._process, _COMMIT_S)
            return None
        return lost

    async def _rewind(self, lost: list[TopicPartition]) -> bool:
        """Seek ``lost`` to their start and, for a group member, commit that start (a stale commit
        of the lost log's offsets must not outlive it: module docstring); whether the seeks went
        through (the start's commit is best effort: the next commit carries the new positions)."""
        try:
            starts = await asyncio.wait_for(self._consumer.beginning_offsets(lost), _ASK_S)
            if set(starts) != set(lost):
                return False
            for tp, start in starts.items():
                self._consumer.seek(tp, start)
        except (KafkaError, OSError, TimeoutError):  # away again, or (IllegalStateError) another member's now
            return False
        REWOUND.labels(self._process).inc(len(lost))
        logger.warning("%s: %d partition(s) of %s now end before where they ended (the broker lost them, or "
                       "the topic was re-created); reading them again from their start",
                       self._process, len(lost), ", ".join(sorted({tp.topic for tp in lost})))
        # IllegalOperation: a consumer outside any group (assigned partitions) commits nothing
        with contextlib.suppress(KafkaError, OSError, TimeoutError, IllegalOperation):
            await asyncio.wait_for(self._consumer.commit(dict(starts)), _COMMIT_S)
        return True

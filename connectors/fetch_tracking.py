"""What the scheduler has running, and what of it may be committed, per partition.

A fetch request is one task. Its offset may be committed only once it and every request before it
in its partition finished: ``Offsets`` keeps, per partition, the offsets still running, and what
is safe to commit is below the oldest of them. ``InFlight`` holds the tasks, by partition (so a
rebalance can stop exactly those of the partitions it takes away), and a flag for room under the
in-flight cap.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable

from aiokafka import TopicPartition
from aiokafka.structs import OffsetAndMetadata

__all__ = ["InFlight", "Offsets", "finished"]

logger = logging.getLogger("connectors.scheduler")  # its messages are the scheduler's


class InFlight:
    """The running fetch tasks, and an event set while there is room for more.

    A flag kept by the tasks' own callbacks: ``asyncio.wait(tasks)`` at the cap would add and
    remove a callback on each of the 20,000 tasks every time round the loop."""

    def __init__(self, limit: int) -> None:
        self.limit, self.tasks, self.room = limit, set[asyncio.Task[None]](), asyncio.Event()
        self.of: defaultdict[TopicPartition, set[asyncio.Task[None]]] = defaultdict(set)  # by partition
        self.room.set()

    def add(self, tp: TopicPartition, task: asyncio.Task[None]) -> None:
        self.tasks.add(task)
        self.of[tp].add(task)
        task.add_done_callback(functools.partial(self._done, tp))
        if len(self.tasks) >= self.limit:
            self.room.clear()

    def _done(self, tp: TopicPartition, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        running = self.of.get(tp)
        if running is not None:
            running.discard(task)
            if not running:
                del self.of[tp]
        if len(self.tasks) < self.limit:
            self.room.set()

    async def cancel(self, partitions: Iterable[TopicPartition]) -> int:
        """Cancel the fetches of ``partitions`` and wait until each has ended; how many there were."""
        tasks = [task for tp in partitions for task in self.of.get(tp, ())]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return len(tasks)


def finished(partition: _Partition, offset: int, task: asyncio.Task[None]) -> None:
    """A request's task ended: its offset may be committed only if it ran to its end.

    Cancelled (the scheduler stopped): it did not finish and re-runs from the last commit. Raised:
    ``_one`` handles every fetch failure itself (an outcome, the cursor left behind), so what
    escapes it is a dead letter that could not be written; kept unfinished rather than lost, it
    holds its partition's commits back until a restart or a rebalance re-runs it."""
    if task.cancelled():
        return
    error = task.exception()
    if error is not None:
        logger.error("a fetch request's task failed (%s); its offset stays uncommitted and the request re-runs "
                     "after a restart or a rebalance", type(error).__name__)
        return
    partition.finish(offset)


class _Partition:
    """One partition's requests: the offsets still running (a multiset: after a rebalance the
    same record can be handed out again while its first run goes on) and the highest started."""

    __slots__ = ("highest", "running")

    def __init__(self) -> None:
        self.running: Counter[int] = Counter()
        self.highest = -1

    def start(self, offset: int) -> None:
        self.running[offset] += 1
        self.highest = max(self.highest, offset)

    def finish(self, offset: int) -> None:
        left = self.running[offset] - 1
        if left > 0:
            self.running[offset] = left
        else:
            del self.running[offset]

    def committable(self) -> int:
        return min(self.running) if self.running else self.highest + 1


class Offsets:
    """Per partition: the offsets still running; what is safe to commit is below the oldest.

    Each task's callback holds its own partition's record: dropping a partition (revoked, or a
    refused commit) leaves the tasks still running on it updating a record nobody reads."""

    def __init__(self) -> None:
        self.partitions: dict[TopicPartition, _Partition] = {}

    def start(self, tp: TopicPartition, offset: int) -> _Partition:
        partition = self.partitions.get(tp)
        if partition is None:
            partition = self.partitions[tp] = _Partition()
        partition.start(offset)
        return partition

    def committable(self, assigned: set[TopicPartition]) -> dict[TopicPartition, OffsetAndMetadata]:
        """What to commit for the partitions still ``assigned``; the others are dropped (the
        group gave them to another member, which commits them)."""
        for tp in self.partitions.keys() - assigned:
            del self.partitions[tp]
        return {tp: OffsetAndMetadata(partition.committable(), "") for tp, partition in self.partitions.items()}

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        """Drop ``partitions`` (read again from their start: their old offsets mean nothing now)."""
        for tp in partitions:
            self.partitions.pop(tp, None)

"""Consumer-group lag as the broker sees it, for every group reading this run's topics.

Faust reports its own view of its consumer; the sink and the scheduler use plain aiokafka
consumers and report none. The broker knows them all: :class:`LagMonitor` asks it every
``interval`` seconds for the groups (``ListGroups``), each group's committed offsets
(``OffsetFetch``) and the end offsets of the topics under ``settings.kafka.topic_prefix``, and
exports, per group and partition:

- ``wearables_consumer_group_lag`` {group, topic, partition}: end offset - committed offset (a
  partition of a topic the group reads with no commit yet: end offset - beginning offset);
- ``wearables_consumer_group_committed_offset`` {group, topic, partition};
- ``wearables_topic_end_offset`` {topic, partition};
- ``wearables_lag_monitor_errors_total``: rounds that failed (logged once each, never fatal).

A group "reads" a topic once it committed on any of its partitions: neither the embedded broker
(Tansu) nor every client fills in member assignments, and a group's commits are what the broker
keeps after its members left. The offsets are asked for partition by partition, because Tansu
cannot answer an ``OffsetFetch`` for "all partitions" (null topics; aiokafka fails to decode it).

The gauges are one collector that serves the last complete round, so a group or a partition
that disappeared drops out of ``/metrics`` at the next round, and a scrape never sees half a
round. Group and topic names are configuration (``wearables.sink``), never identifiers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from threading import Lock

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from runtime.kafka import client_config, make_consumer
from runtime.metrics import ALLOWED_LABELS, METRIC_PREFIX, counter
from runtime.service import TaskService
from runtime.settings import Settings

__all__ = ["ERRORS", "LAG", "GroupPartition", "LagCollector", "LagMonitor", "LagSnapshot", "compute_lag"]

logger = logging.getLogger(__name__)

ERRORS = counter("lag_monitor_errors_total", "Lag monitor rounds that failed (the broker did not answer)")

_GROUP_LABELS = ("group", "topic", "partition")
_TOPIC_LABELS = ("topic", "partition")
assert set(_GROUP_LABELS) <= ALLOWED_LABELS  # a collector bypasses runtime.metrics' check: keep it here
_NO_COMMIT = -1  # OffsetFetch's answer for a partition the group never committed on
_REQUEST_TIMEOUT_MS = 10_000


@dataclass(frozen=True, slots=True, order=True)
class GroupPartition:
    group: str
    topic: str
    partition: int


@dataclass(frozen=True, slots=True)
class LagSnapshot:
    """One round: per (group, topic, partition) the committed offset and lag, per partition the end."""

    lag: Mapping[GroupPartition, int] = field(default_factory=dict)
    committed: Mapping[GroupPartition, int] = field(default_factory=dict)
    end: Mapping[TopicPartition, int] = field(default_factory=dict)


def compute_lag(end: Mapping[TopicPartition, int], beginning: Mapping[TopicPartition, int],
                committed: Mapping[str, Mapping[TopicPartition, int]]) -> LagSnapshot:
    """The snapshot of one round from the broker's offsets.

    :param committed: per group, the committed offset of each partition asked for (-1: none).

    Only the topics a group committed on count for it; there, a partition without a commit lags
    by what it holds (end - beginning), which is what the group will read from it.
    """
    lag: dict[GroupPartition, int] = {}
    offsets: dict[GroupPartition, int] = {}
    for group, by_partition in committed.items():
        topics = {tp.topic for tp, offset in by_partition.items() if offset != _NO_COMMIT}
        for tp in sorted(end):
            if tp.topic not in topics:
                continue
            key = GroupPartition(group, tp.topic, tp.partition)
            offset = by_partition.get(tp, _NO_COMMIT)
            if offset == _NO_COMMIT:
                lag[key] = max(0, end[tp] - beginning.get(tp, 0))
            else:
                offsets[key] = offset
                lag[key] = max(0, end[tp] - offset)
    return LagSnapshot(lag=lag, committed=offsets, end=dict(end))


class LagCollector(Collector):
    """Serves the latest :class:`LagSnapshot` as three gauge families."""

    def __init__(self) -> None:
        self._lock = Lock()  # set on the event loop, collected on the metrics server's thread
        self._snapshot = LagSnapshot()

    def set(self, snapshot: LagSnapshot) -> None:
        with self._lock:
            self._snapshot = snapshot

    def snapshot(self) -> LagSnapshot:
        with self._lock:
            return self._snapshot

    def collect(self) -> Iterator[GaugeMetricFamily]:
        snapshot = self.snapshot()
        lag, committed, end = self._families()
        for key, value in sorted(snapshot.lag.items()):
            lag.add_metric([key.group, key.topic, str(key.partition)], value)
        for key, value in sorted(snapshot.committed.items()):
            committed.add_metric([key.group, key.topic, str(key.partition)], value)
        for tp, value in sorted(snapshot.end.items()):
            end.add_metric([tp.topic, str(tp.partition)], value)
        yield from (lag, committed, end)

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield from self._families()

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(METRIC_PREFIX + "consumer_group_lag", "Records a consumer group has yet to read "
                              "(end offset - committed offset), as the broker reports it", labels=_GROUP_LABELS),
            GaugeMetricFamily(METRIC_PREFIX + "consumer_group_committed_offset",
                              "The offset a consumer group committed, per partition", labels=_GROUP_LABELS),
            GaugeMetricFamily(METRIC_PREFIX + "topic_end_offset", "The end offset (next offset to be written) of "
                              "each partition of this run's topics", labels=_TOPIC_LABELS),
        )


#: The process's lag gauges, served on the default registry's ``/metrics``.
LAG = LagCollector()
REGISTRY.register(LAG)


class LagMonitor(TaskService):
    """Every ``interval`` seconds, read every consumer group's lag from the broker into ``collector``.

        async with LagMonitor(settings, bootstrap=bootstrap).running():
            ...                                  # wearables_consumer_group_lag on /metrics

    :param settings: the run's settings (the Kafka connection and topic prefix).
    :param bootstrap: the Kafka to use (default: as settings say).
    :param interval: seconds between rounds.
    """

    name = "lag"

    def __init__(self, settings: Settings, *, bootstrap: str | None = None, interval: float = 10.0,
                 collector: LagCollector = LAG) -> None:
        super().__init__()
        self.settings, self.bootstrap, self.interval, self.collector = settings, bootstrap, interval, collector
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                try:
                    await self.round()
                except Exception as error:  # a broker restart or a timeout: the next round asks again
                    ERRORS.inc()
                    logger.warning("consumer-group lag not read this round (%s: %s)", type(error).__name__, error)
                    await self.aclose()  # fresh connections next round
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.interval)
        finally:
            await self.aclose()

    async def round(self) -> LagSnapshot:
        """Read the offsets once, publish them to the collector and return them."""
        admin, consumer = await self._clients()
        prefix = self.settings.kafka.topic_prefix
        partitions = sorted(
            TopicPartition(topic["topic"], part["partition"])
            for topic in await admin.describe_topics()
            if topic["topic"].startswith(prefix) and not topic.get("is_internal")  # __consumer_offsets: no prefix
            for part in topic["partitions"]
        )
        if not partitions:
            snapshot = LagSnapshot()
        else:
            end = await consumer.end_offsets(partitions)
            beginning = await consumer.beginning_offsets(partitions)
            committed: dict[str, dict[TopicPartition, int]] = {}
            for group, _protocol in await admin.list_consumer_groups():
                answer = await admin.list_consumer_group_offsets(group, partitions=partitions)
                committed[group] = {tp: meta.offset for tp, meta in answer.items()}
            snapshot = compute_lag(end, beginning, committed)
        self.collector.set(snapshot)
        return snapshot

    async def aclose(self) -> None:
        """Close the clients (the next round opens new ones)."""
        admin, consumer, self._admin, self._consumer = self._admin, self._consumer, None, None
        if consumer is not None:
            await consumer.stop()
        if admin is not None:
            await admin.close()

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._admin is None or self._consumer is None:
            await self.aclose()
            admin = AIOKafkaAdminClient(**client_config(self.settings, self.bootstrap),
                                        request_timeout_ms=_REQUEST_TIMEOUT_MS)
            consumer = make_consumer(self.settings, bootstrap=self.bootstrap, request_timeout_ms=_REQUEST_TIMEOUT_MS)
            try:
                await admin.start()
                await consumer.start()
            except BaseException:
                await consumer.stop()
                await admin.close()
                raise
            self._admin, self._consumer = admin, consumer
        return self._admin, self._consumer

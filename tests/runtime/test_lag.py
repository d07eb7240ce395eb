"""Consumer-group lag read from the broker: the arithmetic, the collector, and a real round."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry

from cli.topics import create_all_topics
from runtime.kafka import make_consumer, make_producer
from runtime.lag import ERRORS, GroupPartition, LagCollector, LagMonitor, LagSnapshot, compute_lag
from runtime.settings import Settings


def _tp(topic: str, partition: int) -> TopicPartition:
    return TopicPartition(topic, partition)


def test_lag_counts_from_the_commit_or_from_the_beginning() -> None:
    end = {_tp("w.daily", 0): 10, _tp("w.daily", 1): 7, _tp("w.raw", 0): 5}
    beginning = {_tp("w.daily", 0): 0, _tp("w.daily", 1): 2, _tp("w.raw", 0): 0}
    committed = {"w.sink": {_tp("w.daily", 0): 4, _tp("w.daily", 1): -1, _tp("w.raw", 0): -1},
                 "w.idle": {tp: -1 for tp in end}}
    snapshot = compute_lag(end, beginning, committed)
    assert snapshot.lag == {GroupPartition("w.sink", "w.daily", 0): 6, GroupPartition("w.sink", "w.daily", 1): 5}
    assert snapshot.committed == {GroupPartition("w.sink", "w.daily", 0): 4}
    assert snapshot.end == end


def test_the_collector_serves_the_last_round_only() -> None:
    registry = CollectorRegistry()
    collector = LagCollector()
    registry.register(collector)
    collector.set(LagSnapshot(lag={GroupPartition("g", "t", 0): 3, GroupPartition("gone", "t", 1): 1},
                              committed={GroupPartition("g", "t", 0): 2}, end={_tp("t", 0): 5}))
    assert registry.get_sample_value("wearables_consumer_group_lag",
                                     {"group": "g", "topic": "t", "partition": "0"}) == 3
    assert registry.get_sample_value("wearables_consumer_group_committed_offset",
                                     {"group": "g", "topic": "t", "partition": "0"}) == 2
    assert registry.get_sample_value("wearables_topic_end_offset", {"topic": "t", "partition": "0"}) == 5
    collector.set(LagSnapshot(lag={GroupPartition("g", "t", 0): 0}))
    assert registry.get_sample_value("wearables_consumer_group_lag",
                                     {"group": "gone", "topic": "t", "partition": "1"}) is None
    assert registry.get_sample_value("wearables_consumer_group_lag",
                                     {"group": "g", "topic": "t", "partition": "0"}) == 0


@pytest.mark.integration
async def test_a_round_reads_every_groups_lag_from_the_broker(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory()
    await create_all_topics(settings)
    topic, group, produced, consumed = settings.topic("daily"), f"{settings.kafka.topic_prefix}lagtest", 9, 4
    tp = _tp(topic, 0)
    producer = make_producer(settings)
    await producer.start()
    try:
        for n in range(produced):
            await producer.send_and_wait(topic, b"v%d" % n, key=b"k", partition=0)
    finally:
        await producer.stop()
    consumer = make_consumer(settings, bootstrap=None, group_id=group)
    consumer.assign([tp])
    await consumer.start()
    monitor = LagMonitor(settings, collector=LagCollector())
    try:
        got = await consumer.getmany(tp, timeout_ms=5000, max_records=consumed)
        assert len(got[tp]) == consumed
        await consumer.commit({tp: consumed})
        first = await monitor.round()
        assert first.lag[GroupPartition(group, topic, 0)] == produced - consumed
        assert first.committed[GroupPartition(group, topic, 0)] == consumed
        assert first.lag[GroupPartition(group, topic, 1)] == 0  # the topic's other partitions are empty
        assert first.end[tp] == produced
        assert not any(key.group == group and key.topic != topic for key in first.lag)
        await consumer.commit({tp: produced})
        second = await monitor.round()
        assert second.lag[GroupPartition(group, topic, 0)] == 0
    finally:
        await monitor.aclose()
        await consumer.stop()


@pytest.mark.integration
async def test_a_failed_round_is_counted_and_not_fatal(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory()
    before = ERRORS._value.get()
    monitor = LagMonitor(settings, bootstrap="127.0.0.1:1", interval=0.05, collector=LagCollector())
    async with monitor.running():
        while ERRORS._value.get() == before:
            await asyncio.sleep(0.05)
        assert monitor.ready()

"""A consumer still running when its topic's log is lost (the embedded broker restarted, or the
topic re-created) reads the new log from its start, instead of waiting at its old offset."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaConnectionError

from runtime.kafka import TopicPlan, delete_topics, ensure_topics, make_consumer, make_producer
from runtime.lost_logs import REWOUND, LostLogWatch
from runtime.settings import Settings

pytestmark = pytest.mark.integration


async def _send(settings: Settings, topic: str, values: list[bytes]) -> None:
    producer = make_producer(settings)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, partition=0)
    finally:
        await producer.stop()


async def _read(consumer: AIOKafkaConsumer, watch: LostLogWatch | None, got: list[bytes], want: int) -> None:
    async def poll() -> None:
        batches = await consumer.getmany(timeout_ms=200)
        if watch is not None:
            await watch.check()
        got.extend(m.value for records in batches.values() for m in records)

    for _ in range(40):
        await poll()
        if len(got) >= want:
            return


@pytest.mark.parametrize("watched", [True, False])
async def test_a_topic_re_created_under_a_running_consumer_is_read_again_from_its_start(
    settings_factory: Callable[..., Settings], watched: bool
) -> None:
    settings = settings_factory()
    topic = settings.topic("lost")
    plan = TopicPlan(topic, 1)
    await ensure_topics(settings, [plan])
    await _send(settings, topic, [b"old-%d" % i for i in range(5)])
    consumer = make_consumer(settings, bootstrap=None, group_id=None)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        watch = LostLogWatch(consumer, "test", interval=0) if watched else None
        before = REWOUND.labels("test")._value.get()
        old: list[bytes] = []
        await _read(consumer, watch, old, 5)
        assert len(old) == 5

        await delete_topics(settings, [topic])  # what a broker that lost everything looks like
        await ensure_topics(settings, [plan])
        await _send(settings, topic, [b"new-%d" % i for i in range(2)])  # shorter than where we were
        new: list[bytes] = []
        await _read(consumer, watch, new, 2)
        await _send(settings, topic, [b"new-%d" % i for i in range(2, 7)])
        await _read(consumer, watch, new, 7)
    finally:
        await consumer.stop()
    if watched:
        assert new == [b"new-%d" % i for i in range(7)]  # every record of the new log, once, in order
        assert REWOUND.labels("test")._value.get() == before + 1
    else:
        # the broker's answer past a log's end is no records (Kafka's would be OFFSET_OUT_OF_RANGE):
        # without the watch the consumer passes over everything below its old offset
        assert new == [b"new-5", b"new-6"]


async def test_a_consumer_past_the_reported_end_of_a_multi_record_batch_is_not_rewound(
    settings_factory: Callable[..., Settings]
) -> None:
    """Tansu reports a partition's end as its last batch's base offset + 1: a consumer that read a
    whole 10-record batch is past that, and nothing was lost."""
    settings = settings_factory()
    topic = settings.topic("batched")
    await ensure_topics(settings, [TopicPlan(topic, 1)])
    producer = make_producer(settings, max_batch_size=1 << 20, linger_ms=200)
    await producer.start()
    try:
        for n in range(10):
            await producer.send(topic, b"v%d" % n, partition=0)
        await producer.flush()
        consumer = make_consumer(settings, bootstrap=None, group_id=None)
        await consumer.start()
        try:
            tp = TopicPartition(topic, 0)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            watch, before = LostLogWatch(consumer, "test", interval=0), REWOUND.labels("test")._value.get()
            got: list[bytes] = []
            await _read(consumer, watch, got, 10)
            for _ in range(3):
                assert await watch.check() == []
            await producer.send_and_wait(topic, b"after", partition=0)
            await _read(consumer, watch, got, 11)
        finally:
            await consumer.stop()
    finally:
        await producer.stop()
    assert got == [b"v%d" % n for n in range(10)] + [b"after"]  # each once: never read again
    assert REWOUND.labels("test")._value.get() == before


async def _group_member(settings: Settings, topic: str, group: str) -> AIOKafkaConsumer:
    consumer = make_consumer(settings, topic, bootstrap=None, group_id=group)
    await consumer.start()
    for _ in range(50):  # joined: the group gave it its partition
        if consumer.assignment():
            break
        await consumer.getmany(timeout_ms=200)
    return consumer


async def test_a_rewind_commits_the_new_logs_start_and_a_commit_leaves_out_what_was_lost(
    settings_factory: Callable[..., Settings]
) -> None:
    """A commit of the lost log's offsets must not outlive it: the next rebalance would seek the
    member back to them, past the new log's first records (the module docstring's story)."""
    settings = settings_factory()
    topic, group = settings.topic("committed"), settings.topic("committed-group")
    plan, tp = TopicPlan(topic, 1), TopicPartition(topic, 0)
    await ensure_topics(settings, [plan])
    await _send(settings, topic, [b"old-%d" % i for i in range(5)])
    consumer = await _group_member(settings, topic, group)
    try:
        watch = LostLogWatch(consumer, "test", interval=0)
        old: list[bytes] = []
        await _read(consumer, watch, old, 5)
        assert await watch.commit() == []  # nothing lost: what was consumed is committed
        assert await consumer.committed(tp) == 5

        await delete_topics(settings, [topic])
        await ensure_topics(settings, [plan])
        await _send(settings, topic, [b"new-0"])
        # the lost log's offset, as a commit begun before the loss would carry it: left out
        assert await watch.commit({tp: 5}) == [tp]
        assert await consumer.committed(tp) == 0  # the rewind committed the new log's start
        new: list[bytes] = []
        await _read(consumer, watch, new, 1)
        assert new == [b"new-0"]
    finally:
        await consumer.stop()
    # a member joining now starts where the new log starts, not at the lost log's offset 5
    await _send(settings, topic, [b"new-1"])
    later = await _group_member(settings, topic, group)
    try:
        got: list[bytes] = []
        await _read(later, None, got, 2)
    finally:
        await later.stop()
    assert got == [b"new-0", b"new-1"]


class _Consumer:
    """A group member of one partition whose log ends and starts the test sets; records seeks and commits."""

    tp = TopicPartition("t", 0)

    def __init__(self) -> None:
        self.end, self.starts_fail = 10, 0
        self.seeks: list[int] = []
        self.commits: list[dict[TopicPartition, int]] = []

    def assignment(self) -> set[TopicPartition]:
        return {self.tp}

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return dict.fromkeys(tps, self.end)

    async def beginning_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        if self.starts_fail:
            self.starts_fail -= 1
            raise KafkaConnectionError("the broker is away again")
        return dict.fromkeys(tps, 0)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append(offset)

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append(dict(offsets))


async def test_a_rewind_that_did_not_go_through_is_tried_again_and_no_commit_goes_out_meanwhile() -> None:
    consumer = _Consumer()
    watch = LostLogWatch(consumer, "test", interval=0)  # type: ignore[arg-type]
    other = TopicPartition("t", 1)  # a partition this member no longer holds
    assert await watch.commit({consumer.tp: 10, other: 3}) == []
    assert consumer.commits == [{consumer.tp: 10}]  # what it does not hold is left out

    consumer.end, consumer.starts_fail = 2, 1  # the log is lost, and the first rewind fails
    assert await watch.commit({consumer.tp: 10}) is None  # nothing committed: not the lost log's 10
    assert consumer.commits == [{consumer.tp: 10}] and consumer.seeks == []
    assert await watch.commit({consumer.tp: 10}) == [consumer.tp]  # the next look finds the loss again
    assert consumer.seeks == [0] and consumer.commits[1:] == [{consumer.tp: 0}]  # the new start, not 10
    assert await watch.commit({consumer.tp: 2}) == []  # ends only grow from here: nothing lost
    assert consumer.commits[-1] == {consumer.tp: 2}

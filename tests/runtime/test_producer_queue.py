"""runtime/producer_queue.py on the embedded broker: with one record per batch, ``send()`` queues
full batches instead of waiting a broker round trip per record, and delivery stays in order."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from aiokafka.producer.message_accumulator import MessageAccumulator

from runtime.producer_queue import queue_full_batches
from runtime.settings import Settings


@pytest.mark.integration
async def test_sends_queue_behind_full_single_record_batches(settings_factory: Callable[..., Settings]) -> None:
    """runtime/producer_queue.py: with one record per batch, send() queues instead of waiting a
    round trip per record, and the queued records still arrive once each, in order."""
    from aiokafka import TopicPartition

    from runtime.kafka import TopicPlan, ensure_topics, make_consumer, make_producer

    settings = settings_factory()
    topic = settings.topic("queued")
    await ensure_topics(settings, [TopicPlan(topic, 1)])
    partition = TopicPartition(topic, 0)
    producer = make_producer(settings)
    await producer.start()
    try:
        sent = [await producer.send(topic, str(i).encode(), partition=0) for i in range(200)]
        queued = len(producer._message_accumulator._batches[partition])  # private, but what is under test
        offsets = [(await future).offset for future in sent]
    finally:
        await producer.stop()
    assert queued > 1  # without the queue, a send waits until the partition's one batch has left
    assert offsets == list(range(200))
    consumer = make_consumer(settings)
    await consumer.start()
    try:
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        values: list[bytes] = []
        while len(values) < 200:
            values += [m.value for m in (await consumer.getmany(partition, timeout_ms=2000)).get(partition, [])]
        assert values == [str(i).encode() for i in range(200)]
        assert (await consumer.end_offsets([partition]))[partition] == 200
    finally:
        await consumer.stop()


def test_installing_twice_is_idempotent() -> None:
    queue_full_batches()
    installed = MessageAccumulator.add_message
    queue_full_batches()
    assert MessageAccumulator.add_message is installed  # not wrapped a second time
    assert installed.__qualname__ == "queue_full_batches.<locals>.add_message"

"""The normalize agent's declaration (streams/agents/normalize.py): what it reads and writes.

Its body is the pure stage (tests/streams/normalize/test_stage.py); the agent on a real broker,
pages in and samples and dead letters out, is tests/integration/test_normalize_agent.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import date
from types import SimpleNamespace

import faust
import pytest
from aiokafka.errors import KafkaTimeoutError
from faust.exceptions import ProducerSendError
from faust.types.tuples import ConsumerMessage, Message
from prometheus_client import REGISTRY

from runtime.purges import PurgeList
from runtime.settings import Settings
from streams.agents import normalize as agent_module
from streams.agents.normalize import register_normalize
from streams.agents.takes import Deliveries
from streams.normalize import limits
from streams.normalize.stage import RawRecord, StageOutput, normalize_records
from streams.progress import Progress
from tests.builders import SECRET, fitbit_minute_pages, fitbit_page


def test_one_agent_reads_every_raw_topic() -> None:
    settings = Settings.model_validate({"env": "demo", "topic_prefix": "tx.", "kafka_bootstrap_servers": "localhost:1",
                                        "store": "memory://"})
    app = faust.App("test-normalize", broker="kafka://localhost:1", store="memory://", autodiscover=False)
    register_normalize(app, settings, Progress(), PurgeList(b"k"))
    agent = app.agents["normalize"]
    assert set(agent.channel.topics) == {"tx.raw.fitbit", "tx.raw.google_health"}
    assert agent.concurrency == 1  # one instance: one shared vectorised pass at a time


def test_a_take_is_normalized_in_passes_bounded_by_bytes_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings.model_validate({"env": "demo", "topic_prefix": "tx.", "kafka_bootstrap_servers": "localhost:1",
                                        "store": "memory://", "secret_key": SECRET.decode()})
    app = faust.App("test-normalize-take", broker="kafka://localhost:1", store="memory://", autodiscover=False)
    purges = PurgeList(b"k")
    purges.ready.set()
    register_normalize(app, settings, Progress(), purges)
    day = date(2026, 11, 2)
    records = [RawRecord(f"R{n:020d}".encode(), fitbit_page(data_type, body, day=day).to_bytes(), "tx.raw.fitbit")
               for n in range(4) for data_type, body in fitbit_minute_pages(day, n)]
    budget = 3 * max(len(r.value or b"") for r in records)
    monkeypatch.setattr(limits, "TAKE_BUDGET_BYTES", budget)
    passes: list[int] = []

    def counted(part: list[RawRecord], *, secret: bytes) -> list[StageOutput]:
        assert sum(len(r.value or b"") for r in part) <= budget
        passes.append(len(part))
        return normalize_records(part, secret=secret)

    monkeypatch.setattr(agent_module, "normalize_records", counted)
    sent: list[tuple[str, bytes | None, bytes | None]] = []

    async def send(self: faust.types.TopicT, *, key: bytes | None = None, value: bytes | None = None
                   ) -> asyncio.Future[None]:
        sent.append((self.get_topic_name(), key, value))
        return _delivered(None)

    monkeypatch.setattr(faust.topics.Topic, "send", send)
    events = [SimpleNamespace(message=SimpleNamespace(key=r.key, value=r.value, topic=r.topic)) for r in records]

    class Stream:
        async def take_events(self, n: int, within: float) -> AsyncIterator[list[SimpleNamespace]]:
            yield events

    asyncio.run(app.agents["normalize"].fun(Stream()))
    assert sum(passes) == len(records) and len(passes) >= 3 and max(passes) <= 3
    expected = [("tx.samples", key, value) for output in normalize_records(records, secret=SECRET)
                for key, value in output.batches]
    assert sent == expected


def _delivered(result: object, error: BaseException | None = None) -> asyncio.Future[None]:
    """A send's delivery future, already resolved (with ``error`` when the delivery failed)."""
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
    return future


class _Consumer:
    """What a take's acks reach: the offsets a commit may move past."""

    def __init__(self) -> None:
        self.acked: list[int] = []

    def ack(self, message: Message) -> bool:
        self.acked.append(message.offset)
        return True


class _Take:
    """A stream of one take that acks its events when the agent is done with it, as Faust's
    ``take_events`` does (in a ``finally``: also when the agent body raised)."""

    def __init__(self, events: list[SimpleNamespace], consumer: _Consumer) -> None:
        self.events, self.consumer = events, consumer

    async def take_events(self, n: int, within: float) -> AsyncIterator[list[SimpleNamespace]]:
        try:
            yield self.events
        finally:
            for event in self.events:
                event.message.ack(self.consumer)


def _raw_events(count: int) -> list[SimpleNamespace]:
    day = date(2026, 11, 2)
    values = [fitbit_page(data_type, body, day=day).to_bytes() for data_type, body in fitbit_minute_pages(day, 0)]
    events = []
    for offset in range(count):
        message = ConsumerMessage("tx.raw.fitbit", 0, offset, 0.0, 0, None, f"R{offset:020d}".encode(),
                                  values[offset % len(values)], None)
        message.incref()  # as Faust's conductor does for each stream it hands the message to
        events.append(SimpleNamespace(message=message))
    return events


@pytest.mark.parametrize("failure", ["send raises", "delivery fails"])
def test_a_producer_failure_leaves_the_take_unacknowledged_and_stops_the_worker(
    monkeypatch: pytest.MonkeyPatch, failure: str,
) -> None:
    settings = Settings.model_validate({"env": "demo", "topic_prefix": "tx.", "kafka_bootstrap_servers": "localhost:1",
                                        "store": "memory://", "secret_key": SECRET.decode()})
    app = faust.App("test-normalize-failure", broker="kafka://localhost:1", store="memory://", autodiscover=False)
    purges = PurgeList(b"k")
    purges.ready.set()
    register_normalize(app, settings, Progress(), purges)
    crashes: list[BaseException] = []

    async def crash(reason: BaseException) -> None:
        crashes.append(reason)

    monkeypatch.setattr(app, "crash", crash)
    calls = []

    async def send(self: faust.types.TopicT, *, key: bytes | None = None, value: bytes | None = None
                   ) -> asyncio.Future[None]:
        calls.append(self.get_topic_name())
        if len(calls) < 3:
            return _delivered(None)
        if failure == "send raises":
            raise ProducerSendError("Error while sending: KafkaConnectionError()")
        return _delivered(None, KafkaTimeoutError())  # queued, then never delivered

    monkeypatch.setattr(faust.topics.Topic, "send", send)
    events, consumer = _raw_events(4), _Consumer()

    with pytest.raises((ProducerSendError, KafkaTimeoutError)):
        asyncio.run(app.agents["normalize"].fun(_Take(events, consumer)))
    assert consumer.acked == []  # no offset of the take can be committed
    assert len(crashes) == 1  # the app crashed: the worker exits (streams/runner.py) and reads the take again
    assert "tx.dlq" not in calls  # an infrastructure failure is not the pages' fault


def test_a_take_is_acknowledged_once_its_sends_are_delivered(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings.model_validate({"env": "demo", "topic_prefix": "tx.", "kafka_bootstrap_servers": "localhost:1",
                                        "store": "memory://", "secret_key": SECRET.decode()})
    app = faust.App("test-normalize-delivered", broker="kafka://localhost:1", store="memory://", autodiscover=False)
    purges = PurgeList(b"k")
    purges.ready.set()
    register_normalize(app, settings, Progress(), purges)
    pending: list[asyncio.Future[None]] = []
    consumer = _Consumer()

    async def send(self: faust.types.TopicT, *, key: bytes | None = None, value: bytes | None = None
                   ) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        pending.append(future)
        return future

    async def deliver_later() -> None:
        while not pending:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        assert consumer.acked == []  # sent but not yet delivered: not acknowledged
        for future in pending:
            future.set_result(None)

    async def run() -> None:
        later = asyncio.ensure_future(deliver_later())
        await app.agents["normalize"].fun(_Take(_raw_events(2), consumer))
        await later

    monkeypatch.setattr(faust.topics.Topic, "send", send)
    started = time.time()
    asyncio.run(run())
    assert consumer.acked == [0, 1] and all(f.done() for f in pending)
    # the liveness gauge: when the agent last finished a take
    last = REGISTRY.get_sample_value("wearables_worker_last_event_timestamp_seconds", {"stage": "normalize"})
    assert last is not None and last >= started


def test_deliveries_raise_the_first_failed_send() -> None:
    async def run() -> None:
        sent = Deliveries()

        class Topic:
            def __init__(self, error: BaseException | None) -> None:
                self.error = error

            async def send(self, *, key: bytes | None, value: bytes | None) -> asyncio.Future[None]:
                return _delivered(None, self.error)

        await sent.send(Topic(None), key=b"k", value=b"v")  # type: ignore[arg-type]
        await sent.confirm()
        await sent.send(Topic(KafkaTimeoutError()), key=b"k", value=b"v")  # type: ignore[arg-type]
        with pytest.raises(KafkaTimeoutError):
            await sent.confirm()
        await sent.confirm()  # confirmed sends are forgotten

    asyncio.run(run())

"""Several schedulers in one group: one fetch at a time per participant; a rebalance stops the
fetches of the partitions a member gives up before the group hands them on (what finished of them
is committed first); each member polls only the participants whose partition it holds."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import OffsetAndMetadata

from connectors.fetcher import FetchOutcome
from connectors.scheduler import Scheduler
from connectors.vault import Link
from connectors.vendor_health import VendorHealth
from models.fetch import FetchReason, FetchRequest
from models.participants import ApiGeneration, LinkStatus
from models.providers import Provider
from runtime.settings import Settings

TOPIC = "fetch-requests"
REQUEST = FetchRequest(Provider.FITBIT, "steps", "2026-11-01", "2026-11-01", FetchReason.POLL).to_bytes()


class _Message:
    def __init__(self, offset: int, key: bytes) -> None:
        self.offset, self.key, self.value = offset, key, REQUEST


class _TwoPartitions:
    """A consumer holding partitions 0 and 1: hands out what was queued per partition, records commits."""

    def __init__(self) -> None:
        self.queued: dict[TopicPartition, list[_Message]] = {}
        self.commits: list[dict[TopicPartition, int]] = []
        self.held = {TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)}

    def give(self, partition: int, offset: int, key: bytes) -> None:
        self.queued.setdefault(TopicPartition(TOPIC, partition), []).append(_Message(offset, key))

    def assignment(self) -> set[TopicPartition]:
        return set(self.held)

    def partitions_for_topic(self, topic: str) -> set[int]:
        return {0, 1, 2, 3}

    def paused(self) -> set[TopicPartition]:
        return set()

    def pause(self, *tps: TopicPartition) -> None:
        pass

    def resume(self, *tps: TopicPartition) -> None:
        pass

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return dict.fromkeys(tps, 100)

    async def getmany(self, *, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[_Message]]:
        await asyncio.sleep(0.01)
        batch, self.queued = self.queued, {}
        return batch

    async def commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        self.commits.append({tp: o.offset for tp, o in offsets.items()})


class _Gate:
    """Fetches that wait for their participant's gate; records who is inside at once."""

    def __init__(self) -> None:
        self.gates: dict[str, asyncio.Event] = {}
        self.inside: dict[str, int] = {}
        self.most: dict[str, int] = {}
        self.cancelled = 0

    async def fetch(self, research_id: str, request: FetchRequest) -> Any:
        self.inside[research_id] = self.inside.get(research_id, 0) + 1
        self.most[research_id] = max(self.most.get(research_id, 0), self.inside[research_id])
        try:
            await self.gates.setdefault(research_id, asyncio.Event()).wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.inside[research_id] -= 1
        return FetchOutcome("done")


def _scheduler(tmp_path: Path, consumer: Any) -> Scheduler:
    settings = Settings.model_validate({"env": "demo", "data_dir": tmp_path, "kafka_commit_interval": 3600})
    scheduler = Scheduler(settings, bootstrap="unused:9092", vault=None)  # type: ignore[arg-type]
    scheduler._consumer = consumer
    return scheduler


async def _until(condition: Any) -> None:
    for _ in range(300):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")


async def test_one_participant_is_fetched_one_request_at_a_time_and_others_meanwhile(tmp_path: Path) -> None:
    consumer, gate, stop = _TwoPartitions(), _Gate(), asyncio.Event()
    scheduler = _scheduler(tmp_path, consumer)
    for offset in range(3):
        consumer.give(0, offset, b"R1")  # three requests of one participant: steps, heart rate, sleep
    consumer.give(1, 0, b"R2")
    running = asyncio.ensure_future(scheduler._consume(stop, consumer, gate))  # type: ignore[arg-type]
    await _until(lambda: gate.inside.get("R1") == 1 and gate.inside.get("R2") == 1)
    await asyncio.sleep(0.1)
    assert gate.inside == {"R1": 1, "R2": 1}  # R1's other two wait their turn; R2 runs beside
    gate.gates["R1"].set()
    gate.gates["R2"].set()
    await _until(lambda: scheduler.progress.outcomes.get("done") == 4)
    stop.set()
    await asyncio.wait_for(running, 5)
    assert gate.most == {"R1": 1, "R2": 1}


async def test_a_revoked_partition_s_fetches_end_before_it_is_handed_on_and_what_finished_is_committed(
        tmp_path: Path) -> None:
    consumer, gate, stop = _TwoPartitions(), _Gate(), asyncio.Event()
    scheduler = _scheduler(tmp_path, consumer)
    consumer.give(0, 0, b"done-1")
    consumer.give(0, 1, b"held-1")
    consumer.give(1, 0, b"held-2")
    gate.gates["done-1"] = asyncio.Event()
    gate.gates["done-1"].set()
    running = asyncio.ensure_future(scheduler._consume(stop, consumer, gate))  # type: ignore[arg-type]
    await _until(lambda: gate.inside.get("held-1") == 1 and gate.inside.get("held-2") == 1
                 and scheduler.progress.outcomes.get("done") == 1)
    p0, p1 = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)
    await scheduler.hand_over({p0})  # what aiokafka awaits inside the rebalance
    assert gate.cancelled == 1 and gate.inside["held-1"] == 0  # ended before the group moves on
    assert gate.inside["held-2"] == 1  # the kept partition's fetch goes on
    assert consumer.commits[0][p0] == 1  # offset 0 finished: committed; offset 1 re-runs at its new owner
    consumer.held = {p1}
    gate.gates["held-2"].set()
    await _until(lambda: scheduler.progress.outcomes.get("done") == 2)
    stop.set()
    await asyncio.wait_for(running, 5)
    assert consumer.commits[-1] == {p1: 1}


def test_a_member_polls_only_the_participants_whose_partition_it_holds(tmp_path: Path) -> None:
    consumer = _TwoPartitions()
    scheduler = _scheduler(tmp_path, consumer)
    topic = scheduler.settings.topic("fetch-requests")
    consumer.held = {TopicPartition(topic, 0), TopicPartition(topic, 1)}
    partition = DefaultPartitioner()
    ids = [f"rid-{n}" for n in range(200)]
    owned = {rid for rid in ids if partition(rid.encode(), [0, 1, 2, 3], [0, 1, 2, 3]) in (0, 1)}
    assert {rid for rid in ids if scheduler.owns(rid)} == owned
    assert 60 < len(owned) < 140  # about half: the producers' partitioner spreads the keys
    scheduler._consumer = None
    assert not any(scheduler.owns(rid) for rid in ids)  # not consuming (rebalancing, stopping): nobody


class _Links:
    """A vault as a poll reads it: linked Fitbit participants, no cursors yet."""

    def __init__(self, ids: list[str]) -> None:
        self._links = [Link(rid, Provider.FITBIT, ApiGeneration.FITBIT_WEB_API, LinkStatus.LINKED, None, 0.0, None)
                       for rid in ids]

    async def links(self) -> list[Link]:
        return self._links

    async def cursors(self) -> dict[tuple[str, str], str]:
        return {}


class _Types:
    data_types = ("steps",)


async def test_no_poll_before_the_group_gives_partitions_and_a_gained_partition_is_polled_at_once(
        tmp_path: Path) -> None:
    consumer = _TwoPartitions()
    scheduler = _scheduler(tmp_path, consumer)
    topic = scheduler.settings.topic("fetch-requests")
    p0, p1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
    ids = [f"rid-{n}" for n in range(60)]
    partition = DefaultPartitioner()
    of = {rid: partition(rid.encode(), [0, 1, 2, 3], [0, 1, 2, 3]) for rid in ids}
    scheduler.vault = _Links(ids)  # type: ignore[assignment]
    published: list[str] = []

    async def publish(research_id: str, request: FetchRequest) -> None:
        published.append(research_id)

    scheduler.publish_request = publish  # type: ignore[method-assign]
    stop = asyncio.Event()
    consumer.held = set()
    poller = asyncio.ensure_future(scheduler._poll(stop, {Provider.FITBIT: _Types()}, VendorHealth()))  # type: ignore[dict-item]
    await asyncio.sleep(0.1)
    assert published == []  # joining: nobody's partition is known to be ours yet
    consumer.held = {p0}
    scheduler.took({p0})  # the first assignment
    await _until(lambda: bool(published))
    await asyncio.sleep(0.05)
    assert sorted(published) == sorted(rid for rid in ids if of[rid] == 0)
    published.clear()
    consumer.held = {p0, p1}
    scheduler.took({p0, p1})  # p1 comes from a member that left: polled now, p0 not again
    await _until(lambda: bool(published))
    await asyncio.sleep(0.05)
    assert sorted(published) == sorted(rid for rid in ids if of[rid] == 1)
    stop.set()
    await asyncio.wait_for(poller, 5)

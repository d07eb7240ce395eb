"""WorkerService (streams/runner.py) on the embedded broker: ready once started, counting the
raw pages its agents consume, not ready once stopped, and ending ``serve`` when its app crashed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
import rocksdict
from aiokafka import TopicPartition
from prometheus_client import REGISTRY, CollectorRegistry

from cli.topics import create_all_topics
from connectors.simulator.cohort import SyntheticCohort
from models.ids import research_id
from models.providers import Provider
from models.raw import RawPage
from runtime.kafka import make_consumer, make_producer
from runtime.service import serve
from runtime.settings import Settings
from streams.runner import WorkerCrashed, WorkerService, reseed_changelog, stores_ahead_of

pytestmark = pytest.mark.integration

COHORT = SyntheticCohort(1, seed=3)
DAY = date(2026, 10, 20)


def _ready_gauge() -> float | None:
    return REGISTRY.get_sample_value("wearables_worker_ready")


async def test_a_started_worker_is_ready_and_counts_a_published_page(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory()
    await create_all_topics(settings)
    person = COHORT.participant_ids[0]
    page = RawPage(provider=Provider.FITBIT, data_type="activities-steps-intraday", date=DAY.isoformat(),
                   body=COHORT.fitbit_steps_intraday(person, DAY), timezone=COHORT.timezone(person), detail="1min")
    service = WorkerService(settings, registry=CollectorRegistry())
    with pytest.raises(AssertionError, match="not started"):
        _ = service.pipeline

    async with service.running() as worker:
        assert worker.ready() and _ready_gauge() == 1
        progress = worker.pipeline.progress
        assert progress.get("raw_pages") == 0
        producer = make_producer(settings)
        await producer.start()
        try:
            await producer.send_and_wait(settings.topic("raw.fitbit"), page.to_bytes(),
                                         key=research_id(settings.require_secret_key(), person).encode())
        finally:
            await producer.stop()
        assert await progress.wait_for("raw_pages", 1, timeout=60) == 1
        assert progress.get("samples") == 1440 + 1  # a minute a day, and the page's daily total
        assert progress.get("dead_letters") == 0
    assert not worker.ready() and _ready_gauge() == 0


async def test_a_crashed_app_ends_serve_with_one_line_and_the_worker_not_ready(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory()
    await create_all_topics(settings)
    service = WorkerService(settings, registry=CollectorRegistry())
    seen: list[bool] = []

    async def crash_it() -> None:  # what a store that cannot be opened does to the app
        seen.append(service.ready())
        await service.pipeline.app.crash(Exception("Corruption: CURRENT file does not end with newline"))

    with pytest.raises(WorkerCrashed, match="Corruption: CURRENT file") as crashed:
        await asyncio.wait_for(serve(service, metrics_port=0, until=asyncio.Event().wait(), on_ready=crash_it), 60)
    assert seen == [True] and not service.ready() and _ready_gauge() == 0
    message = str(crashed.value)
    assert "\n" not in message and "restarts it" in message and "changelog" in message


async def test_a_store_ahead_of_an_emptied_changelog_writes_its_records_back_before_it_is_moved_aside(
        settings_factory: Callable[..., Settings], tmp_path: Path) -> None:
    settings = settings_factory(store="rocksdb://")
    await create_all_topics(settings)  # the changelogs exist and are empty, as after a broker lost them
    store = tmp_path / "days-2.db"
    db = rocksdict.Rdict(str(store), options=rocksdict.Options(raw_mode=True))
    state = {f"R{n:020d}|2026-11-0{n}".encode(): f"state {n}".encode() for n in range(1, 6)}
    for key, value in state.items():
        db.put(key, value)
    db.put(b"__faust\0offset__", b"41")
    db.close()
    topic = f"{settings.app_id}-days-changelog"
    ends = {("days", p): 0 for p in range(settings.kafka.partitions)}
    assert [(p.name, t, n) for p, t, n in stores_ahead_of(tmp_path, ends)] == [("days-2.db", "days", 2)]

    moved = await reseed_changelog(settings, None, store, "days", 2)
    assert not store.exists() and moved.name.startswith("days-2.db.ahead-")
    consumer = make_consumer(settings)
    await consumer.start()
    try:
        partition = TopicPartition(topic, 2)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        got: dict[bytes, bytes] = {}
        while len(got) < len(state):
            for messages in (await consumer.getmany(timeout_ms=2000)).values():
                got.update({m.key: m.value for m in messages if m.key is not None and m.value is not None})
        assert got == state  # the day states as the store held them, in the store's partition, no offset record
        assert (await consumer.end_offsets([partition]))[partition] == len(state)
    finally:
        await consumer.stop()

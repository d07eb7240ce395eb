"""The daily agent's pure helpers (streams/agents/daily.py), its declaration, and a take with one
bad batch in it (on the embedded broker).

Its behaviour on a real broker, samples in and summaries out, surviving a crash, is
tests/integration/test_crash_recovery.py and tests/integration/test_connectors_end_to_end.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import date
from typing import Any

import faust
import pytest
from aiokafka.partitioner import DefaultPartitioner
from prometheus_client import REGISTRY

from cli.topics import create_all_topics
from connectors.simulator.cohort import SyntheticCohort
from models.daily import DailySummary, daily_key
from models.dead_letter import DeadLetter
from models.errors import Reason
from models.samples import SampleBatch
from runtime.kafka import make_consumer, make_producer
from runtime.purges import PurgeList
from runtime.settings import DailySettings, Settings
from streams.agents import daily as daily_agent
from streams.agents.daily import DAILY_TABLES, _partition_of, note_newest_sample, policy_of, register_daily
from streams.daily.aggregate import DailyRules
from streams.daily.process import DayUpdate, apply_batches
from streams.progress import Progress
from tests.conftest import worker
from tests.streams.daily.helpers import batches_of, cohort_pages


def test_policy_is_read_from_the_daily_settings_in_seconds() -> None:
    policy = policy_of(DailySettings(grace_days=2, state_retention_days=10, valid_day_min_hours=8,
                                     valid_day_min_steps=50, valid_day_max_steps=30_000))
    assert (policy.grace_s, policy.retention_s) == (2 * 86400, 10 * 86400)
    rules = policy.rules
    assert (rules.valid_min_hours, rules.valid_min_steps, rules.valid_max_steps) == (8, 50, 30_000)
    assert rules.fat_burn_min_bpm == DailyRules().fat_burn_min_bpm  # zones are not settings


def test_a_day_key_is_on_the_partition_the_producer_gives_its_research_id() -> None:
    partitioner = DefaultPartitioner()
    for partitions in (1, 4, 12):
        every = list(range(partitions))
        for n in range(50):
            research_id = f"R{n:020x}"
            key = daily_key(research_id, "2026-11-01").encode()
            assert _partition_of(key, partitions) == partitioner(research_id.encode(), every, every)
    spread = {_partition_of(daily_key(f"R{n:020x}", "2026-11-01").encode(), 4) for n in range(50)}
    assert spread == {0, 1, 2, 3}


def test_one_agent_reads_samples_into_two_tables_of_the_configured_partitions() -> None:
    settings = Settings.model_validate({"env": "demo", "topic_prefix": "tx.", "kafka_bootstrap_servers": "localhost:1",
                                        "store": "memory://", "partitions": 5})
    app = faust.App("test-daily", broker="kafka://localhost:1", store="memory://", autodiscover=False)
    register_daily(app, settings, Progress(), PurgeList(b"k"))
    agent = app.agents["daily"]
    assert set(agent.channel.topics) == {"tx.samples"} and agent.concurrency == 1
    assert tuple(app.tables) == DAILY_TABLES == ("days", "watermarks")
    assert {table.partitions for table in app.tables.values()} == {5}


def test_freshness_is_the_newest_sample_emitted_per_provider_and_only_rises() -> None:
    newest: dict[str, int] = {}

    def summary(at: int | None, source: str) -> DailySummary:
        return DailySummary("R" + "0" * 20, "2026-11-02", 1, last_sample_at=at, source=source)

    for at, source in ((1_800_000_100, "fitbit_freshness"), (1_800_000_050, "fitbit_freshness"),
                       (None, "fitbit_freshness"), (1_800_000_010, "google_health_freshness")):
        note_newest_sample(newest, summary(at, source))
    assert newest == {"fitbit_freshness": 1_800_000_100, "google_health_freshness": 1_800_000_010}
    sample = REGISTRY.get_sample_value
    assert sample("wearables_daily_newest_sample_timestamp_seconds", {"provider": "fitbit_freshness"}) == 1_800_000_100


@pytest.mark.integration
async def test_a_take_with_one_bad_batch_applies_the_others_and_dead_letters_that_one(
    settings_factory: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = settings_factory()
    await create_all_topics(settings)
    batches = batches_of(cohort_pages(SyntheticCohort(10, seed=12), [date(2026, 11, 3)]))
    take = [next(b for b in batches if b.research_id == rid) for rid in dict.fromkeys(b.research_id for b in batches)]
    assert len(take) == 10
    bad = take[4].research_id

    def failing(batches: list[SampleBatch], stored: dict[str, bytes], **kwargs: Any) -> DayUpdate:
        if any(b.research_id == bad for b in batches):  # as a batch the decoder let through might
            raise TypeError("unsupported operand type(s)")
        return apply_batches(batches, stored, **kwargs)

    monkeypatch.setattr(daily_agent, "apply_batches", failing)
    producer = make_producer(settings)
    await producer.start()
    try:  # all published before the worker starts: its first take holds the ten
        for batch in take:
            await producer.send(settings.topic("samples"), batch.to_bytes(), key=batch.research_id.encode())
        await producer.flush()
    finally:
        await producer.stop()

    async with worker(settings) as pipeline:
        letters: list[DeadLetter] = []

        async def read_dlq() -> None:
            letters.extend(DeadLetter.from_bytes(v) for v in await _drain(settings, "dlq", timeout=1))

        async def accounted() -> bool:
            await read_dlq()
            return pipeline.progress.get("sample_batches") + len(letters) >= len(take)

        deadline = asyncio.get_running_loop().time() + 60
        while not await accounted():
            assert asyncio.get_running_loop().time() < deadline, "timed out waiting for the take"
        assert pipeline.progress.get("sample_batches") == 9
        assert [(letter.key, letter.stage, letter.reason) for letter in letters] == [
            (bad.encode(), "daily", Reason.INTERNAL_ERROR)]
        assert letters[0].original == take[4].to_bytes()
        assert pipeline.progress.get("summaries") >= 9


async def _drain(settings: Settings, topic: str, *, timeout: float) -> list[bytes]:
    """What arrived on ``topic`` since the last call (one consumer group per test run)."""
    consumer = make_consumer(settings, settings.topic(topic), group_id=f"check-{topic}")
    await consumer.start()
    values: list[bytes] = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            values += [m.value for messages in batch.values() for m in messages]
        await consumer.commit()
    finally:
        await consumer.stop()
    return values

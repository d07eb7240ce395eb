"""The daily agent's pure helpers (streams/agents/daily.py) and its declaration.

Its behaviour on a real broker, samples in and summaries out, surviving a crash, is
tests/integration/test_crash_recovery.py and tests/integration/test_connectors_end_to_end.py.
"""

from __future__ import annotations

import faust
from aiokafka.partitioner import DefaultPartitioner
from prometheus_client import REGISTRY

from models.daily import DailySummary, daily_key
from runtime.purges import PurgeList
from runtime.settings import DailySettings, Settings
from streams.agents.daily import DAILY_TABLES, _partition_of, note_newest_sample, policy_of, register_daily
from streams.daily.aggregate import DailyRules
from streams.progress import Progress


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

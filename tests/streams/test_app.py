"""streams/app.py: the Faust app a worker runs, and the internal topics it needs pre-created."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry

from runtime.settings import Settings
from streams.agents import TABLES
from streams.app import build_pipeline, internal_topic_plan


def _settings(tmp_path: Path) -> Settings:
    return Settings.model_validate({"env": "demo", "topic_prefix": "tx.", "kafka_bootstrap_servers": "localhost:1",
                                    "store": "memory://", "data_dir": tmp_path / "data", "partitions": 6})


def test_internal_plan_is_one_compacted_changelog_per_table_and_the_assignor_topic(tmp_path: Path) -> None:
    plan = internal_topic_plan(_settings(tmp_path))
    assert [(p.name, p.partitions, p.compacted) for p in plan] == [
        ("tx.worker-days-changelog", 6, True),
        ("tx.worker-watermarks-changelog", 6, True),
        ("tx.worker-__assignor-__leader", 1, False),
    ]
    assert TABLES == ("days", "watermarks")
    assert [p.config() for p in plan][-1] == {"cleanup.policy": "delete"}


def test_the_plan_names_the_topics_faust_itself_will_use(tmp_path: Path) -> None:
    """Faust derives the changelog and assignor names from the app id: the plan must agree, or
    `wearables topics create` pre-creates topics nobody reads and Faust's are missing."""
    settings = _settings(tmp_path)
    pipeline = build_pipeline(settings, registry=CollectorRegistry())
    planned = {p.name: p for p in internal_topic_plan(settings)}
    assert set(pipeline.app.tables) == set(TABLES)
    for table in pipeline.app.tables.values():
        changelog = table.changelog_topic
        plan = planned[changelog.get_topic_name()]
        assert (changelog.partitions, changelog.compacting) == (plan.partitions, plan.compacted)
    leader = pipeline.app._leader_assignor._leader_topic  # Faust's own name for it (private)
    assert planned[leader.get_topic_name()].partitions == leader.partitions == 1


def test_a_pipeline_is_a_fresh_app_with_both_agents_and_its_own_progress(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    first = build_pipeline(settings, registry=CollectorRegistry())
    second = build_pipeline(settings, registry=CollectorRegistry())
    assert first.app is not second.app and first.progress is not second.progress
    assert set(first.app.agents) == {"normalize", "daily"}
    assert first.app.conf.id == settings.app_id == "tx.worker"
    assert first.app.conf.producer_max_batch_size == 1  # single-record batches, as every producer here
    assert first.settings is settings and settings.state_dir.is_dir()


def test_what_an_agent_buffers_ahead_of_its_take_stays_bounded_for_one_second_pages(tmp_path: Path) -> None:
    """Faust's stream buffer counts events, not bytes (audit finding 7): at the size of a
    legitimate 1-sec heart-rate day (2.55 MiB), a full buffer must stay well under a small
    worker's memory, and still hold a whole take of either agent (500 pages, 1000 batches)."""
    buffered = build_pipeline(_settings(tmp_path), registry=CollectorRegistry()).app.conf.stream_buffer_maxsize
    one_second_day = int(2.55 * (1 << 20))
    assert buffered * one_second_day <= 3 << 30
    assert buffered >= 1000

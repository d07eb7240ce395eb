"""How a command gets Kafka (cli/kafka_session.py): the configured cluster as it is, else an
embedded broker of the command's own; process commands find Kafka and create every topic."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from cli.kafka_session import KafkaSession, kafka_ready, kafka_session
from cli.topics import all_topic_plans
from runtime.broker import EmbeddedBroker, write_address_file
from runtime.kafka import check_reachable
from runtime.settings import Settings

pytestmark = pytest.mark.integration


async def test_a_configured_cluster_is_used_as_it_is(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory()
    settings.state_dir.mkdir(parents=True)
    (settings.state_dir / "kept").write_text("table state")
    async with kafka_session(settings, log_name="session-broker.log") as session:
        assert session == KafkaSession(str(settings.kafka.bootstrap_servers), None)  # no broker of its own
    assert (settings.state_dir / "kept").read_text() == "table state"  # no embedded-broker wipe
    assert not (settings.data_dir / "session-broker.log").exists()


async def test_without_a_cluster_a_broker_of_its_own_runs_for_the_session(tmp_path: Path) -> None:
    settings = Settings(env="demo", data_dir=tmp_path / "data", kafka_connect_timeout=10)  # type: ignore[arg-type]
    stale = settings.state_dir / "days-0.db"
    stale.parent.mkdir(parents=True)
    stale.write_text("state of an earlier broker")
    async with kafka_session(settings, log_name="session-broker.log") as session:
        assert session.broker_pid is not None and not stale.exists()
        assert isinstance(await check_reachable(settings, session.bootstrap), list)  # it answers
        assert (settings.data_dir / "session-broker.log").is_file()
    with pytest.raises(ProcessLookupError):
        os.kill(session.broker_pid, 0)  # stopped with the session


async def test_kafka_ready_creates_every_topic_on_the_configured_cluster(
        settings_factory: Callable[..., Settings], broker: EmbeddedBroker) -> None:
    settings = settings_factory()
    assert await kafka_ready(settings) == broker.bootstrap
    expected = {plan.name for plan in all_topic_plans(settings)}
    assert expected <= set(await check_reachable(settings))


async def test_kafka_ready_finds_the_running_wearables_broker(settings_factory: Callable[..., Settings],
                                                              broker: EmbeddedBroker, tmp_path: Path) -> None:
    configured = settings_factory()
    settings = Settings(env="demo", topic_prefix=configured.kafka.topic_prefix,  # type: ignore[arg-type]
                        data_dir=tmp_path / "found")
    assert broker.pid is not None
    write_address_file(settings.data_dir, broker.bootstrap, broker.pid)  # as `wearables broker` does
    assert await kafka_ready(settings) == broker.bootstrap
    topics = set(await check_reachable(configured))
    assert {plan.name for plan in all_topic_plans(settings)} <= topics

"""The process commands' bodies (cli/services.py): each builds its service, finds Kafka, creates the
topics, serves until SIGTERM and exits 0. ``wearables worker`` is run the same way by
tests/integration/test_crash_recovery.py, ``broker`` by tests/runtime/test_broker.py, ``simulator``
by tests/cli/test_children.py and linking by the demo (tests/cli/test_main.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cli.children import ChildProcess
from cli.services import run_broker
from cli.topics import all_topic_plans
from models.errors import ConfigurationError
from runtime.kafka import check_reachable
from runtime.settings import Settings


async def test_the_embedded_broker_refuses_to_run_beside_a_configured_cluster(tmp_path: Path) -> None:
    settings = Settings(env="demo", kafka_bootstrap_servers="kafka:9092", data_dir=tmp_path)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"KAFKA_BOOTSTRAP_SERVERS is set \(kafka:9092\).*unset it"):
        await run_broker(settings, port=None, create_topics=True, metrics_port=0)
    assert not (tmp_path / "broker.log").exists()  # refused before starting anything


@pytest.mark.integration
@pytest.mark.parametrize(("command", "stopped"), [
    (("sink",), "sink stopped after 0 flush(es)"),
    (("gateway", "--port", "0"), "gateway on http://"),
    (("scheduler",), "scheduler stopped: 0 fetch requests, 0 pages published"),
])
async def test_a_process_command_creates_the_topics_is_ready_and_stops_cleanly(
        settings_factory: Callable[..., Settings], tmp_path: Path, command: tuple[str, ...], stopped: str) -> None:
    settings = settings_factory()
    child = ChildProcess(command, log=tmp_path / f"{command[0]}.log", ready_timeout=120, env={
        "WEARABLES_ENV": "demo", "KAFKA_BOOTSTRAP_SERVERS": str(settings.kafka.bootstrap_servers),
        "WEARABLES_TOPIC_PREFIX": settings.kafka.topic_prefix, "WEARABLES_DATA_DIR": str(tmp_path / "data"),
        "WEARABLES_LOG_LEVEL": "WARNING"})
    await child.start()
    try:
        assert child.ready()
        assert {plan.name for plan in all_topic_plans(settings)} <= set(await check_reachable(settings))
    finally:
        await child.stop()
    assert child.process is not None and child.process.returncode == 0
    assert stopped in child.log.read_text()

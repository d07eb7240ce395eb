"""The one way a command gets Kafka: the configured cluster, else an embedded broker.

``kafka_session`` is for one-shot commands (demo, replay, benchmarks): it starts a broker of
its own when none is configured and stops it at the end. ``kafka_ready`` is for the process
commands (worker, sink, gateway, scheduler): it finds the configured cluster or the running
``wearables broker`` and makes sure every topic exists.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from cli.console import console
from cli.topics import create_all_topics
from runtime.broker import BrokerService, EmbeddedBroker
from runtime.kafka import resolve_bootstrap
from runtime.settings import Settings

__all__ = ["KafkaSession", "kafka_ready", "kafka_session"]


@dataclass(frozen=True, slots=True)
class KafkaSession:
    bootstrap: str
    broker_pid: int | None = None  # the embedded broker's, when this session started one


@contextlib.asynccontextmanager
async def kafka_session(settings: Settings, *, log_name: str) -> AsyncIterator[KafkaSession]:
    """``KAFKA_BOOTSTRAP_SERVERS``, or an embedded broker started (and stopped) here."""
    if settings.kafka.bootstrap_servers:
        yield KafkaSession(settings.kafka.bootstrap_servers)
        return
    shutil.rmtree(settings.state_dir, ignore_errors=True)  # state of an earlier in-memory broker
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    broker = BrokerService(EmbeddedBroker(log_path=Path(settings.data_dir) / log_name))
    with console.status("starting the embedded broker"):
        await broker.start()
    try:
        console.print(f"embedded broker: {broker.bootstrap}")
        yield KafkaSession(broker.bootstrap, broker.broker.pid)
    finally:
        await broker.stop()


async def kafka_ready(settings: Settings) -> str:
    """The bootstrap servers of the configured or running Kafka, with every topic created."""
    bootstrap = resolve_bootstrap(settings)
    await create_all_topics(settings, bootstrap)
    return bootstrap

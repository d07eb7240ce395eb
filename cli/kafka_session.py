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
from typing import Any

from cli.console import console
from cli.topics import create_all_topics
from models.errors import ConfigurationError
from runtime.broker import BrokerService, EmbeddedBroker
from runtime.broker_tls import BrokerTls
from runtime.kafka import resolve_bootstrap
from runtime.settings import Settings

__all__ = ["KafkaSession", "kafka_ready", "kafka_session"]


@dataclass(frozen=True, slots=True)
class KafkaSession:
    bootstrap: str
    broker_pid: int | None = None  # the embedded broker's, when this session started one
    tls: BrokerTls | None = None  # the CA and client files of an embedded broker started with TLS

    def overrides(self) -> dict[str, Any]:
        """The settings that reach this Kafka (flat names, for ``Settings.with_overrides``)."""
        return {"kafka_bootstrap_servers": self.bootstrap, **(self.tls.settings() if self.tls else {})}


@contextlib.asynccontextmanager
async def kafka_session(settings: Settings, *, log_name: str, tls: bool = False) -> AsyncIterator[KafkaSession]:
    """``KAFKA_BOOTSTRAP_SERVERS``, or an embedded broker started (and stopped) here; ``tls``: in its TLS mode."""
    if settings.kafka.bootstrap_servers:
        if tls:
            raise ConfigurationError(
                f"--tls starts the embedded broker in its TLS mode, but KAFKA_BOOTSTRAP_SERVERS is set "
                f"({settings.kafka.bootstrap_servers}): secure that cluster's connections with "
                "KAFKA_SECURITY_PROTOCOL and KAFKA_SSL_*, or unset it")
        yield KafkaSession(settings.kafka.bootstrap_servers)
        return
    shutil.rmtree(settings.state_dir, ignore_errors=True)  # state of an earlier in-memory broker
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    log = Path(settings.data_dir) / log_name
    broker = BrokerService(EmbeddedBroker(log_path=log, tls=tls, tls_dir=log.with_name(f"{log.stem}-tls").resolve()))
    with console.status("starting the embedded broker"):
        await broker.start()
    try:
        over = f" over TLS (CA {broker.tls.cafile})" if broker.tls is not None else ""
        console.print(f"embedded broker: {broker.bootstrap}{over}", soft_wrap=True)
        yield KafkaSession(broker.bootstrap, broker.broker.pid, broker.tls)
    finally:
        await broker.stop()


async def kafka_ready(settings: Settings) -> str:
    """The bootstrap servers of the configured or running Kafka, with every topic created."""
    bootstrap = resolve_bootstrap(settings)
    await create_all_topics(settings, bootstrap)
    return bootstrap

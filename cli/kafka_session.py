"""The Kafka a one-shot command uses: the configured cluster, else an embedded broker of its own."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

from cli.common import console
from runtime.broker import EmbeddedBroker
from runtime.settings import Settings

__all__ = ["kafka_session"]


@contextlib.asynccontextmanager
async def kafka_session(settings: Settings, *, log_name: str) -> AsyncIterator[str]:
    """Yield bootstrap servers: ``KAFKA_BOOTSTRAP_SERVERS``, or a broker started (and stopped) here."""
    if settings.kafka_bootstrap_servers:
        yield settings.kafka_bootstrap_servers
        return
    shutil.rmtree(settings.state_dir, ignore_errors=True)  # state of an earlier in-memory broker
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with console.status("starting the embedded broker"):
        broker = await EmbeddedBroker(log_path=Path(settings.data_dir) / log_name).start()
    try:
        console.print(f"embedded broker: {broker.bootstrap}")
        yield broker.bootstrap
    finally:
        broker.stop()

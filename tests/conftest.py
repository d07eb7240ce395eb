"""Shared fixtures: the embedded broker (once per session), fresh settings and topics per test,
and an in-process worker. Integration tests talk to the real broker over TCP."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from runtime.broker import BrokerService, EmbeddedBroker
from runtime.settings import Settings
from streams.app import Pipeline
from streams.runner import WorkerService

#: The public Fitabase export the real-data tests read (citation and licence in its README.md).
FITABASE = Path(__file__).parent / "data" / "fitabase"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No WEARABLES_* or KAFKA_* variable from the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.upper().startswith(("WEARABLES_", "KAFKA_")):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """The embedded broker on a free loopback port, ready once it answers Metadata."""
    log = tmp_path_factory.mktemp("broker") / "broker.log"
    service = BrokerService(EmbeddedBroker(log_path=log, ready_timeout=60))
    asyncio.run(service.start())
    try:
        yield service.broker
    finally:
        asyncio.run(service.stop())


@pytest.fixture(scope="session")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """The embedded broker in its TLS mode (stunnel4 in front, a throwaway CA and client certificate)."""
    folder = tmp_path_factory.mktemp("tls-broker")
    service = BrokerService(EmbeddedBroker(log_path=folder / "broker.log", ready_timeout=60, tls=True,
                                           tls_dir=folder / "tls"))
    asyncio.run(service.start())
    try:
        yield service.broker
    finally:
        asyncio.run(service.stop())


@pytest.fixture
def settings_factory(broker: EmbeddedBroker, tmp_path: Path) -> Callable[..., Settings]:
    """Settings for this test: its own topic prefix (so tests share nothing) and data dir."""
    prefix = f"t{uuid.uuid4().hex[:10]}."

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "env": "demo",
            "topic_prefix": prefix,
            "kafka_bootstrap_servers": broker.bootstrap,
            "data_dir": tmp_path / "data",
            "store": "memory://",
            "partitions": 4,
            "metrics_port": 0,
        }
        values.update(overrides)
        return Settings.model_validate(values)

    return make


@asynccontextmanager
async def worker(settings: Settings) -> AsyncIterator[Pipeline]:
    """A worker service running in this event loop against the settings' Kafka, topics pre-created."""
    from cli.topics import create_all_topics

    await create_all_topics(settings)
    async with WorkerService(settings).running() as service:
        yield service.pipeline


@pytest.fixture(scope="session")
def fitabase_minutes() -> Any:
    """Fitabase minute steps as long rows (id, local, steps); citation in tests/data/fitabase/README.md."""
    from tests.builders import fitabase_minute_steps

    return fitabase_minute_steps(FITABASE)


async def wait_until(check: Callable[[], bool], timeout: float, what: str, *, every: float = 0.5) -> None:
    """Poll ``check`` every ``every`` seconds until it is true; an AssertionError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(every)

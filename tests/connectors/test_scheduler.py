"""The scheduler's loop: a fetch that hits a bug is counted and logged (without identifiers), not lost
silently; at its in-flight cap it pauses its consumer and resumes as fetches finish."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cli.topics import create_all_topics
from connectors import scheduler as scheduler_module
from connectors.fetcher import FetchOutcome
from connectors.scheduler import Scheduler
from models.fetch import FetchReason, FetchRequest
from models.providers import Provider
from runtime.kafka import make_consumer, make_producer
from runtime.settings import Settings


class _BrokenFetcher:
    async def fetch(self, research_id: str, request: FetchRequest) -> Any:
        raise RuntimeError(f"no such table for {research_id}")  # driver errors can quote parameters


async def test_a_fetch_that_raises_is_counted_as_error_and_logged_without_the_research_id(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    scheduler = Scheduler(Settings.model_validate({"env": "demo", "data_dir": tmp_path}), bootstrap="unused:9092",
                          vault=None)  # type: ignore[arg-type]
    request = FetchRequest(Provider.GOOGLE_HEALTH, "steps", "2026-11-01", "2026-11-02", FetchReason.POLL, time.time())
    with caplog.at_level(logging.ERROR, logger="connectors.scheduler"):
        await scheduler._one(_BrokenFetcher(), b"rid-secret-42", request.to_bytes())  # type: ignore[arg-type]
    assert scheduler.progress.outcomes == {"error": 1}
    assert "RuntimeError" in caplog.text and "rid-secret-42" not in caplog.text


class _HeldFetcher:
    """Fetches that wait until the test lets them go."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def fetch(self, research_id: str, request: FetchRequest) -> Any:
        await self.release.wait()
        return FetchOutcome("done")


@pytest.mark.integration
async def test_at_the_in_flight_cap_it_stops_taking_requests_and_resumes_when_they_finish(
        settings_factory: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scheduler_module, "_MAX_IN_FLIGHT", 5)
    settings = settings_factory(kafka_commit_interval=0.2)
    await create_all_topics(settings)
    bootstrap = settings.kafka.bootstrap_servers or ""
    scheduler = Scheduler(settings, bootstrap=bootstrap, vault=None)  # type: ignore[arg-type]
    producer = make_producer(settings)
    consumer = make_consumer(settings, settings.topic("fetch-requests"), group_id=f"{settings.kafka.topic_prefix}cap")
    fetcher, stop = _HeldFetcher(), asyncio.Event()
    request = FetchRequest(Provider.GOOGLE_HEALTH, "steps", "2026-11-01", "2026-11-01", FetchReason.POLL)

    async def publish(count: int) -> None:
        for n in range(count):
            await producer.send(settings.topic("fetch-requests"), request.to_bytes(), key=f"r{n}".encode())
        await producer.flush()

    async def until(condition: Callable[[], bool]) -> None:
        for _ in range(300):
            if condition():
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"timed out: consumed {scheduler.progress.consumed}")

    await producer.start()
    await consumer.start()
    try:
        running = asyncio.ensure_future(scheduler._consume(stop, consumer, fetcher))  # type: ignore[arg-type]
        await publish(8)
        await until(lambda: scheduler.progress.consumed >= 5)
        await asyncio.sleep(1)  # the loop's next turn pauses it
        held = scheduler.progress.consumed
        await publish(8)
        await asyncio.sleep(2)  # time for many more polls: none of them may hand out a record
        assert scheduler.progress.consumed == held and 5 <= held < 16 and scheduler.progress.in_flight == held
        assert consumer.paused()
        fetcher.release.set()
        await until(lambda: scheduler.progress.outcomes.get("done", 0) == 16)
        await until(lambda: not consumer.paused())  # at the loop's next turn, after its current poll
        stop.set()
        await running
        committed = [await consumer.committed(tp) or 0 for tp in consumer.assignment()]
        assert sum(committed) == 16  # every offset, once the held requests finished
    finally:
        stop.set()
        fetcher.release.set()
        await consumer.stop()
        await producer.stop()

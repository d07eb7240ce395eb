"""Reading ``daily`` back in the end-to-end tests: the latest revision of each day."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from models.daily import DailySummary
from runtime.kafka import make_consumer
from runtime.settings import Settings

Latest = dict[str, DailySummary]


async def latest_daily(settings: Settings, group: str, *, done: Callable[[Latest], bool], timeout: float,
                       settle_s: float = 0.0) -> Latest:
    """The latest summary per day, read from the start of ``daily`` until ``done`` says so and
    nothing new arrived for ``settle_s`` seconds (or ``timeout`` passed)."""
    consumer = make_consumer(settings, settings.topic("daily"), group_id=group)
    await consumer.start()
    latest: Latest = {}
    loop = asyncio.get_running_loop()
    try:
        deadline, quiet_since = loop.time() + timeout, loop.time()
        while loop.time() < deadline and not (done(latest) and loop.time() - quiet_since >= settle_s):
            for messages in (await consumer.getmany(timeout_ms=500)).values():
                for message in messages:
                    summary = DailySummary.from_bytes(message.value)
                    if summary.key not in latest or summary.revision >= latest[summary.key].revision:
                        latest[summary.key] = summary
                    quiet_since = loop.time()
    finally:
        await consumer.stop()
    return latest

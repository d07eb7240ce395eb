"""The normalize agent's declaration (streams/agents/normalize.py): what it reads and writes.

Its body is the pure stage (tests/streams/normalize/test_stage.py); the agent on a real broker,
pages in and samples and dead letters out, is tests/integration/test_normalize_agent.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date
from types import SimpleNamespace

import faust
import pytest

from runtime.purges import PurgeList
from runtime.settings import Settings
from streams.agents import normalize as agent_module
from streams.agents.normalize import register_normalize
from streams.normalize import limits
from streams.normalize.stage import RawRecord, StageOutput, normalize_records
from streams.progress import Progress
from tests.builders import SECRET, fitbit_minute_pages, fitbit_page


def test_one_agent_reads_every_raw_topic() -> None:
    settings = Settings.model_validate({"env": "demo", "topic_prefix": "tx.", "kafka_bootstrap_servers": "localhost:1",
                                        "store": "memory://"})
    app = faust.App("test-normalize", broker="kafka://localhost:1", store="memory://", autodiscover=False)
    register_normalize(app, settings, Progress(), PurgeList(b"k"))
    agent = app.agents["normalize"]
    assert set(agent.channel.topics) == {"tx.raw.fitbit", "tx.raw.google_health"}
    assert agent.concurrency == 1  # one instance: one shared vectorised pass at a time


def test_a_take_is_normalized_in_passes_bounded_by_bytes_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings.model_validate({"env": "demo", "topic_prefix": "tx.", "kafka_bootstrap_servers": "localhost:1",
                                        "store": "memory://", "secret_key": SECRET.decode()})
    app = faust.App("test-normalize-take", broker="kafka://localhost:1", store="memory://", autodiscover=False)
    purges = PurgeList(b"k")
    purges.ready.set()
    register_normalize(app, settings, Progress(), purges)
    day = date(2026, 11, 2)
    records = [RawRecord(f"R{n:020d}".encode(), fitbit_page(data_type, body, day=day).to_bytes(), "tx.raw.fitbit")
               for n in range(4) for data_type, body in fitbit_minute_pages(day, n)]
    budget = 3 * max(len(r.value or b"") for r in records)
    monkeypatch.setattr(limits, "TAKE_BUDGET_BYTES", budget)
    passes: list[int] = []

    def counted(part: list[RawRecord], *, secret: bytes) -> list[StageOutput]:
        assert sum(len(r.value or b"") for r in part) <= budget
        passes.append(len(part))
        return normalize_records(part, secret=secret)

    monkeypatch.setattr(agent_module, "normalize_records", counted)
    sent: list[tuple[str, bytes | None, bytes | None]] = []

    async def send(self: faust.types.TopicT, *, key: bytes | None = None, value: bytes | None = None) -> None:
        sent.append((self.get_topic_name(), key, value))

    monkeypatch.setattr(faust.topics.Topic, "send", send)
    events = [SimpleNamespace(message=SimpleNamespace(key=r.key, value=r.value, topic=r.topic)) for r in records]

    class Stream:
        async def take_events(self, n: int, within: float) -> AsyncIterator[list[SimpleNamespace]]:
            yield events

    asyncio.run(app.agents["normalize"].fun(Stream()))
    assert sum(passes) == len(records) and len(passes) >= 3 and max(passes) <= 3
    expected = [("tx.samples", key, value) for output in normalize_records(records, secret=SECRET)
                for key, value in output.batches]
    assert sent == expected

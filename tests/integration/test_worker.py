"""A worker in this process against the embedded broker over TCP."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from prometheus_client import REGISTRY

from models.providers import Provider
from models.topics import raw_topic_suffix
from runtime.kafka import make_producer
from runtime.settings import Settings
from streams.agents import intake_totals
from tests.conftest import worker

pytestmark = pytest.mark.integration


def _metric(provider: str) -> float:
    return REGISTRY.get_sample_value("wearables_raw_pages_total", {"provider": provider}) or 0.0


async def _publish(settings: Settings, pages: dict[Provider, int]) -> None:
    producer = make_producer(settings)
    await producer.start()
    try:
        for provider, count in pages.items():
            for i in range(count):
                await producer.send(settings.topic(raw_topic_suffix(provider)), b'{"page": %d}' % i,
                                    key=f"R{i % 23:020d}".encode())
        await producer.flush()
    finally:
        await producer.stop()


@pytest.mark.parametrize("store", ["memory://", "rocksdb://"])
async def test_worker_counts_every_page_and_recovers_its_table(
    settings_factory: Callable[..., Settings], store: str
) -> None:
    settings = settings_factory(store=store)
    pages = {Provider.FITBIT: 170, Provider.GOOGLE_HEALTH: 130}
    before = {p: _metric(p.value) for p in Provider}

    async with worker(settings) as pipeline:
        await _publish(settings, pages)
        await pipeline.progress.wait_for("raw_pages", 300, timeout=60)
        totals = intake_totals(pipeline.table_items("raw_intake"))
    assert totals == {"fitbit": 170, "google_health": 130}
    for provider, count in pages.items():
        assert _metric(provider.value) - before[provider] == count

    # A new worker (after a restart) restores the table (memory: from the changelog; RocksDB:
    # from disk plus the changelog delta) and does not consume the committed pages again.
    async with worker(settings) as pipeline:
        assert intake_totals(pipeline.table_items("raw_intake")) == {"fitbit": 170, "google_health": 130}
        await _publish(settings, {Provider.FITBIT: 5})
        await pipeline.progress.wait_for("raw_pages", 5, timeout=60)
        assert pipeline.progress.get("raw_pages") == 5
        assert intake_totals(pipeline.table_items("raw_intake")) == {"fitbit": 175, "google_health": 130}

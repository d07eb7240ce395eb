"""A worker restarted onto a damaged RocksDB state directory (audit finding 11): the damaged
stores are moved aside, Faust restores them from their changelogs, and the summaries come out
as if nothing had happened."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from cli.topics import create_all_topics
from connectors.simulator.cohort import SyntheticCohort
from models.topics import raw_topic_suffix
from runtime.kafka import make_producer
from runtime.settings import Settings
from tests.integration.pipeline import latest_summaries
from tests.integration.test_crash_recovery import _mismatches, _start_worker, _wait
from tests.streams.daily.helpers import Store, batches_of, cohort_pages

pytestmark = pytest.mark.integration

COHORT = SyntheticCohort(8, seed=41)
DAYS = [date(2026, 9, 1) + timedelta(days=i) for i in range(2)]


async def _publish(settings: Settings, pages: list[tuple[str, Any]]) -> None:
    producer = make_producer(settings)
    await producer.start()
    try:
        for key, page in pages:
            await producer.send(settings.topic(raw_topic_suffix(page.provider)), page.to_bytes(), key=key.encode())
        await producer.flush()
    finally:
        await producer.stop()


def _reference(pages: list[tuple[str, Any]]) -> Store:
    reference = Store()
    batches = batches_of(pages)
    reference.apply(batches, watermark=max(max(b.timestamps) for b in batches if len(b)))
    return reference


def _damage(stores: list[Path]) -> list[str]:
    """Damage every store a different way: an empty CURRENT, a truncated SST (or write-ahead log
    when nothing was flushed yet), a MANIFEST overwritten in the middle."""
    done = []
    for n, store in enumerate(stores):
        if n % 3 == 0:
            (store / "CURRENT").write_bytes(b"")
            done.append("CURRENT emptied")
        elif n % 3 == 1:
            files = sorted(store.glob("*.sst")) or sorted(store.glob("*.log"))
            os.truncate(files[0], files[0].stat().st_size // 2)
            done.append(f"{files[0].suffix} truncated")
        else:
            manifest = max(store.glob("MANIFEST-*"))
            with manifest.open("r+b") as handle:
                handle.seek(min(20, manifest.stat().st_size // 2))
                handle.write(b"\xff" * 16)
            done.append("MANIFEST damaged")
    return done


async def test_a_restart_onto_damaged_stores_rebuilds_them_from_the_changelog(
    settings_factory: Callable[..., Settings], tmp_path: Path,
) -> None:
    settings = settings_factory(store="rocksdb://", partitions=2, grace_days=30)
    await create_all_topics(settings)
    pages = cohort_pages(COHORT, DAYS)
    # The first run sees each day's steps, the second its heart rate: a summary after the second
    # run is right only if the day states of the first survived (here: came back from the changelog).
    first, second = pages[::2], pages[1::2]
    log = tmp_path / "worker.log"

    worker = await _start_worker(settings, log)
    try:
        await _publish(settings, first)
        reference = _reference(first)

        async def first_done() -> bool:
            return not _mismatches(await latest_summaries(settings), reference)

        await _wait(first_done, 40, "the first run's summaries")
    finally:
        await worker.stop()  # SIGTERM: a clean stop, the stores closed

    stores = sorted((settings.state_dir / "v1" / "tables").glob("*.db"))
    assert len(stores) == 4, stores  # days and watermarks, two partitions each
    _damage(stores)

    worker = await _start_worker(settings, log)
    try:
        assert worker.ready()
        await _publish(settings, second)
        reference = _reference(pages)

        async def converged() -> bool:
            return not _mismatches(await latest_summaries(settings), reference)

        await _wait(converged, 60, "the restarted worker's summaries to match the reference")
    finally:
        await worker.stop()
    text = log.read_text()
    assert text.count("rebuilt from its changelog") == 4, text[-3000:]
    assert sorted(p.name.partition(".corrupt-")[0] for p in stores[0].parent.glob("*.corrupt-*")) == [
        p.name for p in stores]

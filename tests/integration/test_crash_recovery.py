"""SIGKILL a worker in the middle of a 100-participant x 14-day run, restart it: the final
summaries equal those of a run without the crash (revision counters aside)."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from cli.children import ChildProcess
from cli.topics import create_all_topics
from connectors.simulator.cohort import SyntheticCohort
from models.daily import DailySummary
from models.topics import raw_topic_suffix
from runtime.kafka import make_producer
from runtime.settings import Settings
from tests.integration.pipeline import latest_summaries
from tests.streams.daily.helpers import IGNORED, Store, batches_of, cohort_pages

pytestmark = pytest.mark.integration

COHORT = SyntheticCohort(100, seed=99)
DAYS = [date(2026, 9, 1) + timedelta(days=i) for i in range(14)]


async def _start_worker(settings: Settings, log: Path, *, commit_interval: float = 1.0) -> ChildProcess:
    """A ``wearables worker`` process, started and ready (joined its group, tables recovered)."""
    worker = ChildProcess(("worker",), log=log, ready_timeout=180, env={
        "KAFKA_BOOTSTRAP_SERVERS": str(settings.kafka.bootstrap_servers),
        "WEARABLES_TOPIC_PREFIX": settings.kafka.topic_prefix,
        "WEARABLES_DATA_DIR": str(settings.data_dir), "WEARABLES_ENV": "demo", "WEARABLES_STORE": "rocksdb://",
        "WEARABLES_PARTITIONS": str(settings.kafka.partitions), "WEARABLES_LOG_LEVEL": "WARNING",
        "WEARABLES_GRACE_DAYS": str(settings.daily.grace_days),
        "WEARABLES_KAFKA_COMMIT_INTERVAL": str(commit_interval),
    })
    await worker.start()
    return worker


async def _publish_steadily(settings: Settings, pages: list[tuple[str, Any]], *, seconds: float) -> None:
    producer = make_producer(settings)
    await producer.start()
    try:
        chunk = max(1, len(pages) // 40)
        for start in range(0, len(pages), chunk):
            for key, page in pages[start:start + chunk]:
                await producer.send(settings.topic(raw_topic_suffix(page.provider)), page.to_bytes(),
                                    key=key.encode())
            await producer.flush()
            await asyncio.sleep(seconds / 40)
    finally:
        await producer.stop()


def _mismatches(got: dict[str, DailySummary], reference: Store) -> list[str]:
    out = []
    for key, want in reference.daily.items():
        have = got.get(key)
        fields = [f for f in want.__dataclass_fields__ if f not in IGNORED]
        if have is None or any(getattr(have, f) != getattr(want, f) for f in fields):
            out.append(key)
    return out


async def _wait(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await condition():  # type: ignore[misc]
            return
        await asyncio.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


async def test_sigkill_mid_run_then_restart_gives_the_same_summaries(
    settings_factory: Callable[..., Settings], tmp_path: Path,
) -> None:
    # A long grace period: finalization runs on the worker's sweep timer, which is not what is tested here.
    settings = settings_factory(store="rocksdb://", partitions=4, grace_days=30)
    await create_all_topics(settings)
    pages = cohort_pages(COHORT, DAYS)
    expected_days = len(COHORT.participant_ids) * len(DAYS)
    reference = Store()  # the same pages through the pure functions, no crash
    newest = max(max(b.timestamps) for b in batches_of(pages[-2:]) if len(b))
    reference.apply(batches_of(pages), watermark=newest)
    assert len(reference.daily) == expected_days

    log = tmp_path / "worker.log"
    # No offset commit before the kill: the restart must replay into the recovered state, every time.
    worker = await _start_worker(settings, log, commit_interval=600)
    # Pages arrive over ~20 s, as from connectors, so the kill lands mid-run however fast the worker is.
    publishing = asyncio.ensure_future(_publish_steadily(settings, pages, seconds=20))
    try:
        async def some_done() -> bool:
            return len(await latest_summaries(settings)) >= expected_days // 4

        await _wait(some_done, 180, "a quarter of the days to be summarized")
        assert worker.process is not None
        worker.process.send_signal(signal.SIGKILL)
        await asyncio.wait_for(worker.process.wait(), 10)
        assert len(await latest_summaries(settings)) < expected_days, "the crash came too late to test anything"

        worker = await _start_worker(settings, log)

        async def converged() -> bool:
            return not _mismatches(await latest_summaries(settings), reference)

        await publishing
        await _wait(converged, 300, "the restarted worker's summaries to match the reference")
    finally:
        publishing.cancel()
        await worker.stop()

    got = await latest_summaries(settings)
    assert len(got) == expected_days
    mismatched = _mismatches(got, reference)
    tail = log.read_text()[-2000:]
    assert mismatched == [], f"{len(mismatched)} days differ, e.g. {mismatched[:3]}; worker log: {tail}"
    assert any(s.duplicates > 0 for s in got.values())  # the replay after the crash was deduplicated

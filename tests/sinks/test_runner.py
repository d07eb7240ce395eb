"""The sink on the embedded broker: daily + intraday records in, the Parquet dataset out, bad
records in dlq, offsets committed only after the write (a restart writes nothing twice)."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from prometheus_client import REGISTRY

from cli.topics import create_all_topics
from models.dead_letter import DeadLetter
from models.errors import Reason
from runtime.kafka import make_producer
from runtime.settings import Settings
from sinks.completeness import CompletenessMonitor, completeness
from sinks.runner import SinkRunner
from tests.integration.test_normalize_agent import _drain
from tests.sinks.helpers import cohort_records

pytestmark = pytest.mark.integration


def _files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*.parquet"))}


async def test_sink_writes_the_dataset_and_dead_letters_bad_records(settings_factory: Callable[..., Settings],
                                                                  tmp_path: Path) -> None:
    settings = settings_factory(sink_flush_interval=0.5)
    await create_all_topics(settings)
    summaries, batches, _ = cohort_records(participants=6, days=2)
    producer = make_producer(settings)
    await producer.start()
    try:
        for batch in batches:
            await producer.send(settings.topic("intraday"), batch.to_bytes(), key=batch.research_id.encode())
        await producer.send(settings.topic("intraday"), b'{"v": 1, "research_id": "R1"}', key=b"R1")
        for summary in summaries:
            await producer.send(settings.topic("daily"), summary.to_bytes(), key=summary.key.encode())
        await producer.send(settings.topic("daily"), b"not json", key=b"R1|2026-11-01")
        await producer.flush()
    finally:
        await producer.stop()

    root = tmp_path / "dataset"
    sink = SinkRunner(settings, location=str(root), idle_exit=6)
    sink.completeness = CompletenessMonitor(sink.dataset, today=lambda: date(2026, 11, 3))  # the cohort's days
    progress = await sink.drain()
    assert progress.records == len(batches) + len(summaries) + 2
    # the cohort gauges were refreshed after the flush, from what it wrote
    assert REGISTRY.get_sample_value("wearables_cohort_participants") == 6
    figures = completeness(sink.dataset, date(2026, 11, 3))
    assert REGISTRY.get_sample_value("wearables_cohort_valid_day_share", {"window": "7d"}) == figures.valid_share["7d"]
    assert progress.dead_letters == 2

    daily = pl.scan_parquet(f"{root}/daily_summary/**/*.parquet", hive_partitioning=True).collect()
    assert daily.height == len(summaries) == 12
    expected_steps = {(s.research_id, s.local_date): s.steps for s in summaries}
    assert {(r, d.isoformat()): s for r, d, s in daily.select("person_id", "date", "steps").rows()} == expected_steps
    minutes = pl.scan_parquet(f"{root}/heart_rate_minute_level/**/*.parquet", hive_partitioning=True).collect()
    assert minutes.height == sum(len(b) for b in batches if b.metric.value == "heart_rate")

    letters = [DeadLetter.from_bytes(v) for v in await _drain(settings, "dlq", until=lambda vs: len(vs) >= 2)]
    assert sorted(letter.reason for letter in letters) == sorted([Reason.NOT_JSON, Reason.MISSING_FIELD])
    assert {letter.stage for letter in letters} == {"sink"}

    before = _files(root)
    again = await SinkRunner(settings, location=str(root), idle_exit=4).drain()  # same group: offsets were committed
    assert again.records == 0
    replayed = await SinkRunner(settings, location=str(root), group=f"{settings.kafka.topic_prefix}replay",
                                idle_exit=6).drain()
    assert replayed.records == len(batches) + len(summaries) + 2  # everything read again ...
    assert _files(root) == before  # ... and nothing changed


async def test_a_full_disk_commits_nothing_and_the_sink_resumes_when_space_returns(
        settings_factory: Callable[..., Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # audit finding 21: on ENOSPC the sink exited uncommitted, and crash-looped into the same full disk
    import errno
    import os

    from tests.conftest import wait_until

    settings = settings_factory(sink_flush_interval=0.5)
    await create_all_topics(settings)
    summaries, _, _ = cohort_records(participants=2, days=1)
    root = tmp_path / "dataset"

    async def publish(days: list[Any]) -> None:
        producer = make_producer(settings)
        await producer.start()
        try:
            for summary in days:
                await producer.send(settings.topic("daily"), summary.to_bytes(), key=summary.key.encode())
            await producer.flush()
        finally:
            await producer.stop()

    await publish(summaries)
    await SinkRunner(settings, location=str(root), idle_exit=4).drain()
    before = _files(root)
    await publish([dataclasses.replace(s, revision=s.revision + 1, steps=7) for s in summaries])

    replace, disk_full = os.replace, [True]

    def full_disk(src: str, dst: str) -> None:
        if disk_full[0]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        replace(src, dst)

    monkeypatch.setattr(os, "replace", full_disk)
    errors = REGISTRY.get_sample_value("wearables_sink_storage_errors_total") or 0.0
    blocked = SinkRunner(settings, location=str(root))
    blocked.storage_backoff = (0.2, 0.5)
    async with blocked.running():
        await wait_until(lambda: (REGISTRY.get_sample_value("wearables_sink_storage_errors_total") or 0) >= errors + 2,
                         30, "two failed attempts")
        assert not blocked.ready() and blocked.progress.flushes == 0
        assert _files(root) == before  # the old files, and no *.tmp
    # stopped while the disk was full: nothing was committed, so the next sink reads the records again
    resumed = SinkRunner(settings, location=str(root))
    resumed.storage_backoff = (0.2, 0.5)
    async with resumed.running():
        await wait_until(lambda: resumed.storage_blocked, 30, "the disk still full")
        disk_full[0] = False
        await wait_until(lambda: resumed.progress.flushes == 1, 30, "the flush once space returned")
        assert resumed.progress.records == len(summaries) and not resumed.storage_blocked
        await wait_until(resumed.ready, 10, "ready again")
    daily = pl.scan_parquet(f"{root}/daily_summary/**/*.parquet", hive_partitioning=True).collect()
    assert daily["steps"].to_list() == [7] * len(summaries)
    assert not list(root.rglob("*.tmp"))

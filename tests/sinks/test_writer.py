"""Upserts: re-applying changes nothing, a revision replaces its rows, files are replaced atomically."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import uuid
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from models.samples import Metric, SampleBatch
from sinks.dataset import Dataset
from sinks.tables import (
    ACTIVITY_SUMMARY,
    DAILY_SUMMARY,
    HEART_RATE_SUMMARY,
    SLEEP_DAILY_SUMMARY,
    SLEEP_LEVEL,
    STEPS_INTRADAY,
)
from sinks.writer import DatasetWriter
from tests.sinks.helpers import FIRST, cohort_records


def _files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_applying_the_same_records_again_changes_no_file(tmp_path: Path) -> None:
    summaries, batches, _ = cohort_records()
    writer = DatasetWriter(Dataset(str(tmp_path)))
    writer.apply(summaries, batches)
    before = _files(tmp_path)
    writer.apply(summaries, batches)
    writer.apply(summaries[:3], batches[5:9])  # a replay of part of it
    assert _files(tmp_path) == before
    assert len(before) >= 2 * 6  # every table (and staging) has both dates
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and not p.name.endswith(".parquet")]


def test_a_revised_day_replaces_its_rows(tmp_path: Path) -> None:
    summaries, batches, _ = cohort_records()
    dataset = Dataset(str(tmp_path))
    writer = DatasetWriter(dataset)
    writer.apply(summaries, batches)
    day = summaries[0]
    revised = dataclasses.replace(day, revision=day.revision + 1, steps=day.steps + 500)
    steps = next(b for b in batches if b.metric is Metric.STEPS and b.research_id == day.research_id
                 and b.local_date == day.local_date)
    changed = dataclasses.replace(steps, timestamps=steps.timestamps[:1], values=[steps.values[0] + 7])
    writer.apply([revised], [changed])

    rows = dataset.read(DAILY_SUMMARY, date.fromisoformat(day.local_date))
    mine = rows.filter(pl.col("person_id") == day.research_id)
    assert mine.height == 1 and mine["steps"].item() == day.steps + 500
    intraday = dataset.read(STEPS_INTRADAY, date.fromisoformat(day.local_date))
    assert intraday.height == intraday.select("person_id", "datetime").n_unique()  # one row per key
    first_minute = intraday.filter(pl.col("person_id") == day.research_id).sort("datetime")
    assert first_minute["steps"][0] == steps.values[0] + 7


def test_a_stale_revision_in_the_same_batch_loses(tmp_path: Path) -> None:
    summaries, batches, _ = cohort_records(participants=2, days=1)
    day = summaries[0]
    newer = dataclasses.replace(day, revision=day.revision + 3, steps=4242)
    dataset = Dataset(str(tmp_path))
    DatasetWriter(dataset).apply([newer, day], batches)
    rows = dataset.read(DAILY_SUMMARY, date.fromisoformat(day.local_date)).filter(
        pl.col("person_id") == day.research_id)
    assert rows["steps"].to_list() == [4242]


def test_vendor_day_tables(tmp_path: Path) -> None:
    summaries, batches, rid = cohort_records()
    dataset = Dataset(str(tmp_path))
    DatasetWriter(dataset).apply(summaries, batches)
    activity = dataset.read_all(ACTIVITY_SUMMARY).filter(pl.col("person_id") == rid).sort("date")
    intraday_steps = {s.local_date: s.steps for s in summaries if s.research_id == rid}
    # the vendor total on the first day; the intraday sum on the second (no vendor summary sent)
    assert activity["steps"].to_list() == [9000, intraday_steps[(FIRST.replace(day=2)).isoformat()]]
    assert activity["calories_out"].to_list() == [2400.5, None] and activity["floors"].to_list() == [4, None]
    zones = dataset.read_all(HEART_RATE_SUMMARY).filter(pl.col("person_id") == rid)
    assert zones.height == 4 and set(zones["zone_name"]) == {"Out of Range", "Fat Burn", "Cardio", "Peak"}
    fat_burn = zones.filter(pl.col("zone_name") == "Fat Burn").row(0, named=True)
    assert (fat_burn["min_heart_rate"], fat_burn["max_heart_rate"], fat_burn["minute_in_zone"],
            fat_burn["calorie_count"]) == (91, 127, 60, 400.5)
    sleep = dataset.read_all(SLEEP_DAILY_SUMMARY).sort("sleep_date", "is_main_sleep")
    assert sleep.select("is_main_sleep", "minute_in_bed", "minute_asleep", "minute_deep", "minute_wake").rows() == [
        ("false", 60, 40, 40, 20), ("true", 420, 400, 400, 20)] * 2
    levels = dataset.read_all(SLEEP_LEVEL)
    assert set(levels["level"]) == {"wake", "deep"}  # shortData left out
    assert levels.height == 2 * 2 * 2  # two segments, two logs, two days


def test_a_failed_write_leaves_the_old_file_readable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    summaries, batches, _ = cohort_records(participants=2, days=1)
    dataset = Dataset(str(tmp_path))
    writer = DatasetWriter(dataset)
    writer.apply(summaries, batches)
    before = pl.scan_parquet(f"{tmp_path}/daily_summary/**/*.parquet", hive_partitioning=True).collect()

    def crash(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        writer.apply([dataclasses.replace(s, revision=s.revision + 1, steps=1) for s in summaries], [])
    after = pl.scan_parquet(f"{tmp_path}/daily_summary/**/*.parquet", hive_partitioning=True).collect()
    assert after.equals(before)  # the half-done write is invisible to a *.parquet reader


def test_an_object_store_url_works_like_a_path(tmp_path: Path) -> None:
    summaries, batches, _ = cohort_records(participants=2, days=1)
    local, remote = Dataset(str(tmp_path)), Dataset(f"memory://dataset-{uuid.uuid4().hex}")
    for dataset in (local, remote):
        DatasetWriter(dataset).apply(summaries, batches)
    for table in (DAILY_SUMMARY, STEPS_INTRADAY, ACTIVITY_SUMMARY):
        assert remote.dates(table.name) == local.dates(table.name) == [FIRST]
        assert remote.read(table, FIRST).equals(local.read(table, FIRST))


def _removal(batch: SampleBatch, keep: Callable[[int], bool]) -> SampleBatch:
    """The part of ``batch`` whose timestamps pass ``keep``, marked as withdrawn by the vendor."""
    chosen = [i for i, t in enumerate(batch.timestamps) if keep(t)]

    def pick(column: list[Any] | None) -> list[Any] | None:
        return None if column is None else [column[i] for i in chosen]

    return dataclasses.replace(batch, timestamps=[batch.timestamps[i] for i in chosen],
                               values=[batch.values[i] for i in chosen], labels=pick(batch.labels),
                               durations=pick(batch.durations), deleted=[[0, 2**40]])


def test_withdrawn_samples_leave_every_table_in_arrival_order(tmp_path: Path) -> None:
    summaries, batches, rid = cohort_records()
    steps = next(b for b in batches if b.research_id == rid and b.metric is Metric.STEPS and len(b) > 100)
    noon = steps.timestamps[len(steps) // 2]
    steps_gone = _removal(steps, lambda t: noon <= t < noon + 3600)
    sleep_gone = [_removal(b, lambda t: True) for b in batches if b.research_id == rid
                  and b.metric in (Metric.SLEEP_STAGE, Metric.VENDOR_SLEEP) and b.attributes.get("is_main_sleep")]
    assert len(steps_gone) == 60 and sleep_gone
    clean = Dataset(str(tmp_path / "clean"))
    survivors = [_removal(b, lambda t, b=b: b is not steps or not noon <= t < noon + 3600) for b in batches
                 if b not in sleep_gone and not (b.metric in (Metric.SLEEP_STAGE, Metric.VENDOR_SLEEP)
                                                 and b.research_id == rid and b.attributes.get("is_main_sleep"))]
    DatasetWriter(clean).apply(summaries, [dataclasses.replace(b, deleted=[]) for b in survivors])
    deleted = Dataset(str(tmp_path / "deleted"))
    report = DatasetWriter(deleted).apply(summaries, [*batches, steps_gone, *sleep_gone])
    assert report.removed[STEPS_INTRADAY.name] == 60
    for table in (STEPS_INTRADAY, SLEEP_LEVEL, SLEEP_DAILY_SUMMARY, ACTIVITY_SUMMARY):
        assert deleted.read_all(table).equals(clean.read_all(table)), table.name
    assert deleted.read_all(SLEEP_DAILY_SUMMARY).filter(pl.col("person_id") == rid)["is_main_sleep"].to_list() == [
        "false", "false"]  # the main sleeps are gone, the naps stay
    again = Dataset(str(tmp_path / "again"))
    DatasetWriter(again).apply(summaries, [*batches, steps_gone, steps])  # withdrawn, then sent again
    assert again.read_all(STEPS_INTRADAY).height == clean.read_all(STEPS_INTRADAY).height + 60

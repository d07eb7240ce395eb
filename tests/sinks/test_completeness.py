"""Cohort completeness read from a real (small) dataset: the cohort, valid-day shares, who sent nothing."""

from __future__ import annotations

import asyncio
import math
from datetime import date, timedelta
from pathlib import Path

import polars as pl
from prometheus_client import REGISTRY

from sinks.completeness import Completeness, CompletenessMonitor, completeness
from sinks.dataset import Dataset
from sinks.tables import TABLES

TODAY = date(2026, 11, 20)
DAILY = TABLES["daily_summary"]


def _day(n: int) -> date:
    """``n`` days before TODAY."""
    return TODAY - timedelta(days=n)


def _dataset(tmp_path: Path, rows: list[tuple[str, int, bool, int, int]]) -> Dataset:
    """A dataset whose daily_summary holds (person, days before TODAY, valid, steps, minutes with HR) rows."""
    dataset = Dataset(str(tmp_path / "dataset"))
    frame = pl.DataFrame({"person_id": [r[0] for r in rows], "date": [_day(r[1]) for r in rows],
                          "valid_day": [r[2] for r in rows], "steps": [r[3] for r in rows],
                          "minutes_with_hr": [r[4] for r in rows], "src_id": ["fitbit"] * len(rows)})
    dataset.upsert(DAILY, DAILY.conform(frame))
    return dataset


# A: valid every day of the week; B: valid yesterday only, worn (HR only) 3 days ago;
# C: a row yesterday without steps or HR, valid 5 days ago; D: last seen 20 days ago;
# E: 31 days ago (outside the cohort); F: today only (in the cohort, no complete day yet).
ROWS = [*[("A", n, True, 9000, 900) for n in range(1, 8)],
        ("B", 1, True, 8000, 800), ("B", 3, False, 0, 300),
        ("C", 1, False, 0, 0), ("C", 5, True, 7000, 700),
        ("D", 20, True, 6000, 600), ("E", 31, True, 6000, 600), ("F", 0, False, 100, 10)]


def test_shares_and_participants_without_data_are_exact(tmp_path: Path) -> None:
    figures = completeness(_dataset(tmp_path, ROWS), TODAY)
    assert figures == Completeness(
        participants=5,  # A, B, C, D, F
        valid_share={"yesterday": 2 / 5, "7d": (7 + 1 + 1) / (5 * 7)},
        without_data={1: 3, 3: 3, 7: 2},  # 1 and 3 days: C, D, F; 7 days: D, F (C walked 5 days ago)
    )


def test_an_empty_dataset_is_no_cohort_and_no_share(tmp_path: Path) -> None:
    figures = completeness(Dataset(str(tmp_path / "nothing")), TODAY)
    assert figures == Completeness(0, {"yesterday": None, "7d": None}, {1: 0, 3: 0, 7: 0})


async def test_the_monitor_publishes_off_the_loop_at_most_every_interval(tmp_path: Path) -> None:
    now = [100.0]
    monitor = CompletenessMonitor(_dataset(tmp_path, ROWS), every=30, today=lambda: TODAY, clock=lambda: now[0])
    first = monitor.flushed()
    assert first is not None and await first is not None
    sample = REGISTRY.get_sample_value
    assert sample("wearables_cohort_participants") == 5
    assert sample("wearables_cohort_valid_day_share", {"window": "yesterday"}) == 0.4
    assert sample("wearables_cohort_participants_without_data", {"days": "7"}) == 2
    now[0] += 29
    assert monitor.flushed() is None  # too soon
    now[0] += 1
    again = monitor.flushed()
    assert again is not None
    await monitor.aclose()
    assert again.done()


async def test_no_cohort_is_nan_and_a_failed_read_is_logged_not_raised(tmp_path: Path) -> None:
    monitor = CompletenessMonitor(Dataset(str(tmp_path / "nothing")), today=lambda: TODAY)
    await monitor.refresh()
    share = REGISTRY.get_sample_value("wearables_cohort_valid_day_share", {"window": "7d"})
    assert share is not None and math.isnan(share)

    def broken() -> date:
        raise OSError("object store unreachable")

    failing = CompletenessMonitor(Dataset(str(tmp_path / "nothing")), today=broken)
    assert await asyncio.wait_for(failing.refresh(), 5) is None

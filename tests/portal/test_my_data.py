"""my_data and dates_of on a real Parquet dataset of two participants, written by the sink's own writer."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import cast

import pytest

from models.daily import DailySummary
from models.providers import Provider
from models.samples import Metric, Resolution, SampleBatch, Unit
from portal.my_data import DayPoint, DeviceStatus, MyData, dates_of, my_data
from sinks.dataset import Dataset
from sinks.writer import DatasetWriter

A = "R" + "a" * 20
B = "R" + "b" * 20
TODAY = date(2026, 11, 30)
CHARGE, SCALE, B_DEVICE = "D" + "1" * 16, "D" + "2" * 16, "D" + "3" * 16
OFFSET = -5 * 3600  # America/New_York in winter: local = UTC - 5 h


def _day(rid: str, day: date, steps: int, *, valid: bool, vendor_hr: float | None = None,
         approx_hr: float | None = None) -> DailySummary:
    return DailySummary(research_id=rid, local_date=day.isoformat(), revision=1, steps=steps, valid_day=valid,
                        vendor_resting_hr=vendor_hr, approx_resting_hr=approx_hr, source="fitbit")


def _utc(local: datetime) -> int:
    return int(local.replace(tzinfo=UTC).timestamp()) - OFFSET


def _syncs(rid: str, device: str, version: str | None, kind: str,
           *syncs: tuple[datetime, float | None]) -> SampleBatch:
    """One device's syncs on the first sync's local date: ``(local time, battery level)``."""
    return SampleBatch(research_id=rid, metric=Metric.DEVICE, unit=Unit.PERCENT, resolution=Resolution.EVENT,
                       source=Provider.FITBIT, utc_offset_s=OFFSET, local_date=syncs[0][0].date().isoformat(),
                       timestamps=[_utc(t) for t, _ in syncs],
                       # a device without a battery level has a null value, as the normalizer writes it
                       values=cast("list[float]", [level for _, level in syncs]),
                       labels=[device] * len(syncs),
                       attributes={"battery": "Medium", "device_version": version, "device_type": kind})


def _steps(rid: str, day: date, values: list[float]) -> SampleBatch:
    start = _utc(datetime(day.year, day.month, day.day, 9))
    return SampleBatch(research_id=rid, metric=Metric.STEPS, unit=Unit.STEPS, resolution=Resolution.MINUTE,
                       source=Provider.FITBIT, utc_offset_s=OFFSET, local_date=day.isoformat(),
                       timestamps=[start + 60 * i for i in range(len(values))], values=values)


def write_two_participants(dataset: Dataset) -> None:
    """A: six days (one before the 30-day window), two devices; B: other values on the same dates, one device."""
    summaries = [
        _day(A, TODAY - timedelta(days=45), 7000, valid=True, vendor_hr=64),
        _day(A, TODAY - timedelta(days=30), 6000, valid=True, vendor_hr=63),  # the day before the window
        _day(A, TODAY - timedelta(days=29), 9000, valid=True, vendor_hr=61),  # the window's first day
        _day(A, TODAY - timedelta(days=28), 500, valid=False, approx_hr=66.5),  # no vendor figure: ours
        _day(A, TODAY - timedelta(days=20), 12000, valid=True),  # no heart rate at all
        _day(A, TODAY, 8000, valid=True, vendor_hr=59.0, approx_hr=63.0),  # the vendor's figure wins
        *[_day(B, TODAY - timedelta(days=d), 20000 + d, valid=True, vendor_hr=70) for d in range(0, 40, 3)],
    ]
    morning = datetime(2026, 11, 29, 8, 15)
    batches = [
        _steps(A, TODAY, [10, 20, 30]), _steps(B, TODAY, [5, 5]),
        _syncs(A, CHARGE, "Charge 6", "TRACKER", (morning, 80.0), (morning + timedelta(hours=26), 55.0)),
        _syncs(A, SCALE, None, "SCALE", (datetime(2026, 11, 20, 7, 0), None)),
        _syncs(B, B_DEVICE, "Inspire 3", "TRACKER", (datetime(2026, 11, 30, 12, 0), 11.0)),
    ]
    DatasetWriter(dataset).apply(summaries, batches)


@pytest.fixture
def dataset(tmp_path: Path) -> Dataset:
    data = Dataset(str(tmp_path / "dataset"))
    write_two_participants(data)
    return data


def _point(data: MyData, day: date) -> DayPoint:
    return next(p for p in data.days if p.day == day)


def test_counts_only_the_participants_own_days(dataset: Dataset) -> None:
    mine = my_data(dataset, A, today=TODAY)
    assert mine.days_received == 6
    assert mine.valid_days_30 == 3  # today-29, today-20 and today; today-30 is outside, today-28 invalid
    theirs = my_data(dataset, B, today=TODAY)
    assert theirs.days_received == 14 and theirs.valid_days_30 == 10  # days 0, 3, ..., 27 of B


def test_thirty_days_oldest_first_with_gaps_as_none(dataset: Dataset) -> None:
    days = my_data(dataset, A, today=TODAY).days
    assert [p.day for p in days] == [TODAY - timedelta(days=29 - i) for i in range(30)]
    assert [p.steps for p in days if p.steps is not None] == [9000, 500, 12000, 8000]
    assert _point(my_data(dataset, A, today=TODAY), TODAY - timedelta(days=27)) == DayPoint(
        TODAY - timedelta(days=27), None, None, False)


def test_resting_heart_rate_is_the_vendors_else_ours(dataset: Dataset) -> None:
    data = my_data(dataset, A, today=TODAY)
    assert _point(data, TODAY) == DayPoint(TODAY, 8000, 59.0, True)
    assert _point(data, TODAY - timedelta(days=28)) == DayPoint(TODAY - timedelta(days=28), 500, 66.5, False)
    assert _point(data, TODAY - timedelta(days=20)).resting_hr is None


def test_devices_latest_sync_in_plain_words(dataset: Dataset) -> None:
    devices = my_data(dataset, A, today=TODAY).devices
    assert devices == (
        DeviceStatus("Charge 6", 55, datetime(2026, 11, 30, 10, 15)),  # its later sync, the next local day
        DeviceStatus("Scale", None, datetime(2026, 11, 20, 7, 0)),
    )
    assert my_data(dataset, B, today=TODAY).devices == (DeviceStatus("Inspire 3", 11, datetime(2026, 11, 30, 12)),)
    assert not any(d.device.startswith("D") and len(d.device) == 17 for d in devices)  # never the pseudonym


def test_dates_of_lists_the_participants_dates(dataset: Dataset) -> None:
    expected = sorted((TODAY - timedelta(days=d)).isoformat() for d in (45, 30, 29, 28, 20, 0))
    assert dates_of(dataset, A) == tuple(expected)
    assert dates_of(dataset, "R" + "c" * 20) == ()


def test_a_window_in_the_past_moves_with_today(dataset: Dataset) -> None:
    data = my_data(dataset, A, today=TODAY - timedelta(days=21))
    assert data.valid_days_30 == 3  # today-45 is 24 days before, then today-30 and today-29
    assert data.days[-1].day == TODAY - timedelta(days=21)


@pytest.mark.parametrize("location", ["missing", "empty"])
def test_no_dataset_gives_zeros(tmp_path: Path, location: str) -> None:
    (tmp_path / "empty").mkdir()
    data = my_data(Dataset(str(tmp_path / location)), A, today=TODAY)
    assert (data.days_received, data.valid_days_30, data.devices) == (0, 0, ())
    assert len(data.days) == 30 and all(p.steps is None and p.resting_hr is None for p in data.days)
    assert dates_of(Dataset(str(tmp_path / location)), A) == ()


def test_an_object_store_url_reads_the_same() -> None:
    store = Dataset(f"memory://my-data-{uuid.uuid4().hex}")
    write_two_participants(store)
    try:
        data = my_data(store, A, today=TODAY)
        assert (data.days_received, data.valid_days_30) == (6, 3)
        assert data.devices[0] == DeviceStatus("Charge 6", 55, datetime(2026, 11, 30, 10, 15))
        assert len(dates_of(store, B)) == 14
    finally:
        store.fs.rm(store.root, recursive=True)

"""A participant's own data for the portal's "Your data" page: days received, valid days, 30 days, devices.

Everything is read from the researcher dataset (``sinks/tables.py``), filtered by the
participant's research ID (``person_id``), so the page shows exactly what the study holds.
Only the ``daily_summary`` and ``device`` tables are read: they are small (one row per
participant-day, one per device sync), unlike the minute-level tables.

An empty or missing dataset is not an error: a participant linked today has no data yet, and
the page says so (zeros and empty tuples here).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import polars as pl
from fsspec.implementations.local import LocalFileSystem

from portal.chart import ChartLabels, chart_svg
from sinks.dataset import Dataset
from sinks.tables import DAILY_SUMMARY, DEVICE, Table

__all__ = ["WINDOW_DAYS", "ChartLabels", "DayPoint", "DeviceStatus", "MyData", "chart_svg", "dates_of", "my_data",
           "person_rows"]

WINDOW_DAYS = 30  # the page's window: the 30 calendar days ending today


@dataclass(frozen=True, slots=True)
class DayPoint:
    """One calendar day of the window; ``steps`` and ``resting_hr`` are None when the study has no row that day."""

    day: date
    steps: int | None
    resting_hr: float | None
    valid: bool


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """A device as of its latest sync. ``device`` is its product name or type in plain words ("Charge 6"),
    never its pseudonym; "" when the vendor sent neither."""

    device: str
    battery_level: int | None
    last_sync: datetime | None  # the participant's local wall-clock time, as the vendor reports it


@dataclass(frozen=True, slots=True)
class MyData:
    days_received: int  # distinct dates with a daily_summary row, over all time
    valid_days_30: int  # valid days among the last 30 (today included)
    days: tuple[DayPoint, ...]  # the 30 days ending today, oldest first
    devices: tuple[DeviceStatus, ...]  # most recently synced first


def person_rows(dataset: Dataset, table: Table, research_id: str, columns: list[str] | None = None) -> pl.DataFrame:
    """Every row of ``table`` whose ``person_id`` is ``research_id`` (the table's schema; ``columns`` if given).

    On a local path the files are scanned lazily, so Parquet statistics skip what cannot match
    (rows are sorted by key, ``person_id`` first); on an object store each date file is read
    through the dataset's own file system, which is what works for every fsspec URL.
    """
    wanted = columns or [c.name for c in table.columns]
    schema = pl.Schema({name: table.schema[name] for name in wanted})
    paths = [dataset.path(table.name, day) for day in dataset.dates(table.name)]
    if not paths:
        return pl.DataFrame(schema=schema)
    mine = pl.col("person_id") == research_id
    if isinstance(dataset.fs, LocalFileSystem):
        frame = pl.scan_parquet(paths, hive_partitioning=False).filter(mine).select(wanted).collect()
    else:
        parts = []
        for path in paths:
            with dataset.fs.open(path, "rb") as handle:
                parts.append(pl.read_parquet(handle).filter(mine).select(wanted))
        frame = pl.concat(parts)
    return table.conform(frame).select(wanted)  # the table's types, whatever the files inferred


def dates_of(dataset: Dataset, research_id: str) -> tuple[str, ...]:
    """The ISO dates on which the study holds a daily summary of the participant, sorted."""
    days = person_rows(dataset, DAILY_SUMMARY, research_id, ["date"])["date"].unique().sort()
    return tuple(d.isoformat() for d in days.to_list())


def my_data(dataset: Dataset, research_id: str, *, today: date) -> MyData:
    """The participant's figures for the page, with ``today`` the participant's local date."""
    daily = person_rows(dataset, DAILY_SUMMARY, research_id,
                        ["date", "steps", "vendor_resting_hr", "approx_resting_hr", "valid_day"])
    first = today - timedelta(days=WINDOW_DAYS - 1)
    window = daily.filter(pl.col("date").is_between(first, today))
    return MyData(
        days_received=daily["date"].n_unique(),
        valid_days_30=window.filter(pl.col("valid_day").fill_null(False))["date"].n_unique(),
        days=_days(window, first),
        devices=_devices(person_rows(dataset, DEVICE, research_id,
                                     ["device_id", "device_version", "device_type", "battery_level",
                                      "last_sync_time"])))


def _days(window: pl.DataFrame, first: date) -> tuple[DayPoint, ...]:
    # The vendor's resting heart rate first: it is the number the participant sees in the vendor's
    # app; our approximation only where the vendor sent none.
    by_day = {row["date"]: row for row in window.with_columns(
        resting=pl.coalesce("vendor_resting_hr", "approx_resting_hr")).iter_rows(named=True)}
    points = []
    for offset in range(WINDOW_DAYS):
        day = first + timedelta(days=offset)
        row = by_day.get(day)
        if row is None:
            points.append(DayPoint(day, None, None, False))
        else:
            points.append(DayPoint(day, row["steps"], row["resting"], bool(row["valid_day"])))
    return tuple(points)


def _devices(syncs: pl.DataFrame) -> tuple[DeviceStatus, ...]:
    """The latest sync of each device (the device table has a row per sync)."""
    latest = (syncs.sort("last_sync_time", nulls_last=False)
              .unique(subset=["device_id"], keep="last", maintain_order=True)
              .sort(["last_sync_time", "device_id"], descending=[True, False], nulls_last=True))
    return tuple(DeviceStatus(_device_name(row["device_version"], row["device_type"]), row["battery_level"],
                              row["last_sync_time"]) for row in latest.iter_rows(named=True))


def _device_name(version: str | None, kind: str | None) -> str:
    # The product name ("Charge 6") says most; Fitbit's type is an upper-case word (TRACKER).
    if version:
        return version
    return kind.capitalize() if kind else ""

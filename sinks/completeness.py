"""Cohort completeness from the dataset: how many participant-days are valid, who sent nothing.

The study's question behind device compliance (sinks/compliance.py): of the participants we
know, how much of the data we need do we have? Read from the ``daily_summary`` table for a UTC
date ``today``, over complete days only (today is still being written, so the windows end
yesterday):

- the cohort: distinct ``person_id`` with a row dated within the 30 days up to and including
  today (``wearables_cohort_participants``);
- ``wearables_cohort_valid_day_share`` {window}: valid days / (cohort x days), for
  ``yesterday`` and the ``7d`` before today (a participant-day without a row counts as not valid);
- ``wearables_cohort_participants_without_data`` {days}: cohort participants with no row with
  steps > 0 or minutes with heart rate > 0 in the last 1, 3 and 7 days before today.

With nobody in the cohort the shares are NaN (an alert "share < x" stays quiet, as it should
with no participants). :class:`CompletenessMonitor` refreshes the gauges in the sink after a
flush, at most every 30 s and off the event loop; the numbers are counts and shares, never who.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import polars as pl

from runtime.metrics import gauge
from sinks.dataset import Dataset
from sinks.tables import TABLES

__all__ = ["COHORT_DAYS", "NO_DATA_DAYS", "PARTICIPANTS", "REFRESH_S", "VALID_SHARE", "WINDOWS", "WITHOUT_DATA",
           "Completeness", "CompletenessMonitor", "completeness", "publish"]

logger = logging.getLogger(__name__)

COHORT_DAYS = 30  # a participant silent for longer has left the cohort, as far as these numbers go
WINDOWS = {"yesterday": 1, "7d": 7}  # label -> complete days before today
NO_DATA_DAYS = (1, 3, 7)
REFRESH_S = 30.0

PARTICIPANTS = gauge("cohort_participants", f"Participants with a daily summary in the last {COHORT_DAYS} days")
VALID_SHARE = gauge("cohort_valid_day_share", "Share of the cohort's participant-days that are valid days, by window",
                    ["window"])
WITHOUT_DATA = gauge("cohort_participants_without_data", "Cohort participants without any steps or heart rate in "
                     "the last N complete days", ["days"])

_DAILY = TABLES["daily_summary"]
_COLUMNS = ("person_id", "date", "valid_day", "steps", "minutes_with_hr")


@dataclass(frozen=True, slots=True)
class Completeness:
    """The cohort's size, valid-day share per window (None: no cohort) and participants without data per N days."""

    participants: int
    valid_share: dict[str, float | None]
    without_data: dict[int, int]


def completeness(dataset: Dataset, today: date) -> Completeness:
    """The completeness figures of ``dataset`` for the UTC date ``today``."""
    first = today - timedelta(days=COHORT_DAYS)
    days = [d for d in dataset.dates(_DAILY.name) if first <= d <= today]  # one listing, then only these files
    frame = dataset.read_all(_DAILY, days).select(_COLUMNS)
    cohort = frame["person_id"].n_unique()
    return Completeness(
        participants=cohort,
        valid_share={label: _valid_share(frame, today, n, cohort) for label, n in WINDOWS.items()},
        without_data={n: cohort - _with_data(frame, today, n) for n in NO_DATA_DAYS},
    )


def _window(frame: pl.DataFrame, today: date, days: int) -> pl.DataFrame:
    """The rows of the ``days`` complete days before ``today``."""
    return frame.filter(pl.col("date").is_between(today - timedelta(days=days), today - timedelta(days=1)))


def _valid_share(frame: pl.DataFrame, today: date, days: int, cohort: int) -> float | None:
    if cohort == 0:
        return None
    valid = _window(frame, today, days).filter(pl.col("valid_day").fill_null(False)).height
    return valid / (cohort * days)


def _with_data(frame: pl.DataFrame, today: date, days: int) -> int:
    worn = (pl.col("steps").fill_null(0) > 0) | (pl.col("minutes_with_hr").fill_null(0) > 0)
    return int(_window(frame, today, days).filter(worn)["person_id"].n_unique())


def publish(figures: Completeness) -> None:
    """Set the cohort gauges from ``figures``."""
    PARTICIPANTS.set(figures.participants)
    for label, share in figures.valid_share.items():
        VALID_SHARE.labels(window=label).set(math.nan if share is None else share)
    for days, count in figures.without_data.items():
        WITHOUT_DATA.labels(days=str(days)).set(count)


def _utc_today() -> date:
    return datetime.now(UTC).date()


class CompletenessMonitor:
    """Refreshes the cohort gauges from ``dataset`` in a worker thread, at most every ``every`` seconds.

        monitor = CompletenessMonitor(dataset)
        monitor.flushed()            # after each flush: starts a refresh when one is due
        await monitor.aclose()       # on stop: waits for a refresh under way

    A refresh that fails is logged and tried again at the next flush due; it never stops the sink.
    """

    def __init__(self, dataset: Dataset, *, every: float = REFRESH_S, today: Callable[[], date] = _utc_today,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.dataset, self.every, self._today, self._clock = dataset, every, today, clock
        self._last: float | None = None
        self._task: asyncio.Task[Completeness | None] | None = None

    def flushed(self) -> asyncio.Task[Completeness | None] | None:
        """Start a refresh if none ran in the last ``every`` seconds and none is running; the task, or None."""
        now = self._clock()
        if (self._task is not None and not self._task.done()) or (
                self._last is not None and now - self._last < self.every):
            return None
        self._last = now
        self._task = asyncio.ensure_future(self.refresh())
        return self._task

    async def refresh(self) -> Completeness | None:
        """Compute and publish the figures now (off the event loop); None if reading the dataset failed."""
        try:
            figures = await asyncio.to_thread(completeness, self.dataset, self._today())
        except Exception as error:  # a half-written object store listing, say: the next refresh reads again
            logger.warning("cohort completeness not refreshed (%s: %s)", type(error).__name__, error)
            return None
        publish(figures)
        return figures

    async def aclose(self) -> None:
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

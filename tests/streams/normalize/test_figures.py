"""A vendor's own figures as batches (streams/normalize/figures.py): daily figures at local
midnight, figures at one instant, and unreadable values rejected one by one."""

from __future__ import annotations

from datetime import UTC, date, datetime

import orjson

from models import labels
from models.errors import Reason
from models.samples import Metric, Resolution, Unit
from streams.normalize.batching import BatchSpec
from streams.normalize.figures import daily_figures, daily_figures_of_pages, figures_at
from streams.normalize.timeconv import Zone
from tests.builders import fitbit_page

PAGE = fitbit_page("activities-summary", b"{}")
DAILY = BatchSpec("R1", Metric.VENDOR_DAILY, Unit.MIXED, Resolution.DAY, PAGE)
SLEEP = BatchSpec("R1", Metric.VENDOR_SLEEP, Unit.MIXED, Resolution.EVENT, PAGE)


def _utc(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def test_daily_figures_sit_at_local_midnight_and_bad_values_are_rejected_alone() -> None:
    result = daily_figures([(labels.STEPS, "9000"), (labels.FLOORS, "x")], date(2026, 11, 1),
                           Zone("America/New_York", None), DAILY)
    [batch] = result.batches
    assert (batch.labels, batch.values, batch.timestamps) == (["steps"], [9000.0], [_utc("2026-11-01T04:00:00")])
    assert (batch.local_date, batch.utc_offset_s) == ("2026-11-01", -14400)  # midnight is still summer time
    assert [(r.reason, orjson.loads(r.original)) for r in result.rejects] == [(Reason.NOT_A_NUMBER, [{"floors": "x"}])]


def test_many_pages_of_figures_equal_each_alone() -> None:
    pages = [([(labels.STEPS, 5)], date(2026, 3, 8), Zone("Europe/Berlin", None), DAILY),
             ([(labels.RESTING_HEART_RATE, 60), (labels.STEPS, None)], date(2026, 3, 9), Zone(None, 19800), DAILY)]
    assert daily_figures_of_pages(pages) == [daily_figures(*page) for page in pages]
    assert daily_figures([], date(2026, 3, 8), Zone(None, 0), DAILY).batches == []


def test_figures_at_one_instant() -> None:
    result = figures_at([(labels.MINUTES_ASLEEP, 380), (labels.stage_minutes("deep"), "90")], ts=1_000_000,
                        offset=-18000, local_date="2026-11-03", spec=SLEEP)
    [batch] = result.batches
    assert batch.timestamps == [1_000_000, 1_000_000] and batch.values == [380.0, 90.0]
    unreadable = figures_at([(labels.TIME_IN_BED, 420)], ts=None, offset=None, local_date="2026-11-03", spec=SLEEP)
    assert unreadable.batches == [] and [(r.reason, r.count) for r in unreadable.rejects] == [(Reason.BAD_TIME, 1)]

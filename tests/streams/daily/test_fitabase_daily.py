"""Real data through dedup and daily summaries: Fitabase minute steps and Fitbit's daily totals.

Data: Furberg, Brinton, Keating & Ortiz (2016), Crowd-sourced Fitbit datasets
03.12.2016-05.12.2016, Zenodo, doi:10.5281/zenodo.53894 (CC BY 4.0); the files are in
tests/data/fitabase/.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import polars as pl

from models.raw import RawPage
from tests.builders import fitabase_step_pages
from tests.conftest import FITABASE
from tests.streams.daily.helpers import Store, batches_of


def _with_vendor_totals(pages: list[tuple[str, RawPage]]) -> list[tuple[str, RawPage]]:
    """Replace each page's daily value by Fitbit's own dailySteps total, where there is one."""
    daily = pl.read_csv(FITABASE / "dailySteps_merged.csv").select(
        id=pl.col("Id").cast(pl.String), day=pl.col("ActivityDay").str.strptime(pl.Date, "%m/%d/%Y").cast(pl.String),
        total=pl.col("StepTotal"))
    totals = {(i, d): t for i, d, t in daily.iter_rows()}
    out = []
    for person, page in pages:
        body = orjson.loads(page.body)
        total = totals.get((person, page.date))
        if total is None:
            del body["activities-steps"][0]["value"]
        else:
            body["activities-steps"][0]["value"] = str(total)
        out.append((person, RawPage(provider=page.provider, data_type=page.data_type, date=page.date,
                                    body=orjson.dumps(body), utc_offset_ms=0, detail="1min")))
    return out


def test_daily_steps_vendor_steps_and_valid_day_on_real_data(fitabase_minutes: pl.DataFrame) -> None:
    pages = _with_vendor_totals(fitabase_step_pages(fitabase_minutes))
    store = Store()
    last = max(datetime.fromisoformat(p.date or "") for _, p in pages).replace(tzinfo=UTC)
    store.apply(batches_of([(f"R{person}", page) for person, page in pages]),
                watermark=int(last.timestamp()) + 86400, chunk=128)

    by_hour = fitabase_minutes.with_columns(day=pl.col("local").dt.date().cast(pl.String),
                                            hour=pl.col("local").dt.hour())
    expected = (by_hour
                .group_by("id", "day", "hour").agg(steps=pl.col("steps").sum())
                .group_by("id", "day").agg(steps=pl.col("steps").sum(), hours=(pl.col("steps") > 0).sum()))
    daily = pl.read_csv(FITABASE / "dailySteps_merged.csv").select(
        id=pl.col("Id").cast(pl.String), day=pl.col("ActivityDay").str.strptime(pl.Date, "%m/%d/%Y").cast(pl.String),
        vendor=pl.col("StepTotal"))
    vendor = {(i, d): v for i, d, v in daily.iter_rows()}
    assert len(store.daily) == expected.height
    disagree = 0
    for person, day, steps, hours in expected.iter_rows():
        summary = store.daily[f"R{person}|{day}"]
        assert summary.steps == steps, (person, day)
        assert summary.hours_with_steps == hours
        assert summary.vendor_steps == vendor.get((person, day))
        assert summary.valid_day == (hours >= 10 and 100 <= steps <= 45_000)
        disagree += summary.vendor_steps is not None and summary.vendor_steps != summary.steps
    assert disagree > 0  # Fitbit's own totals disagree with its minute data on some days: both are kept

"""Real data: every minute of the public Fitabase export survives normalization unchanged.

Data: Furberg, Brinton, Keating & Ortiz (2016), Crowd-sourced Fitbit datasets
03.12.2016-05.12.2016, Zenodo, doi:10.5281/zenodo.53894 (CC BY 4.0).
"""

from __future__ import annotations

import polars as pl

from models.samples import Metric
from streams.normalize import normalize
from tests.builders import SECRET, fitabase_step_pages


def test_every_fitabase_minute_normalizes_to_the_same_value(fitabase_minutes: pl.DataFrame) -> None:
    pages = fitabase_step_pages(fitabase_minutes)
    rows: dict[str, list[pl.DataFrame]] = {}
    rejected = 0
    for person, page in pages:
        result = normalize(page, f"R{person}", secret=SECRET)
        rejected += result.rejected
        for batch in result.batches:
            if batch.metric is Metric.STEPS:
                rows.setdefault("all", []).append(batch.to_frame().with_columns(id=pl.lit(person)))
    got = (pl.concat(rows["all"]).select("id", local=pl.from_epoch("ts", time_unit="s"),
                                         steps=pl.col("value").cast(pl.Int64)).sort("id", "local"))
    want = fitabase_minutes.with_columns(pl.col("local").cast(pl.Datetime("us"))).sort("id", "local")
    assert rejected == 0
    assert got.height == want.height == 21645 * 60
    assert got.with_columns(pl.col("local").cast(pl.Datetime("us"))).equals(want)
    assert fitabase_minutes["id"].n_unique() == 33

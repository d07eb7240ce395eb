"""Exact deduplication of incoming samples against a day's stored samples (vectorised).

Sample identity is (day key, metric, label, timestamp). Arrivals are applied in order: a
value equal to the current one is a duplicate (dropped), a different value for the same
identity replaces it and counts as a revision, an unseen identity is new. Pure Polars on
frames of many days at once; no Faust.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

__all__ = ["IDENTITY", "Deduplicated", "deduplicate"]

IDENTITY = ["key", "metric", "label", "ts"]


@dataclass(frozen=True, slots=True)
class Deduplicated:
    """The outcome for one batch of arrivals.

    :param rows: every day's samples after applying the arrivals (stored plus new, changed replaced).
    :param changed: the arrivals that are new or changed a value (final value per identity),
        i.e. what goes to ``intraday``.
    :param counts: per key: ``new``, ``duplicates``, ``revisions``.
    """

    rows: pl.DataFrame
    changed: pl.DataFrame
    counts: pl.DataFrame


def deduplicate(stored: pl.DataFrame, incoming: pl.DataFrame) -> Deduplicated:
    """Apply ``incoming`` (arrival order = row order) to ``stored``; both have the row columns + ``key``."""
    columns = stored.columns
    arrivals = incoming.select(columns).with_columns(seq=pl.int_range(pl.len()))
    previous = stored.select(*IDENTITY, stored_value=pl.col("value"), stored_duration=pl.col("duration"),
                             stored_=pl.lit(True))
    ordered = (arrivals.join(previous, on=IDENTITY, how="left", nulls_equal=True)
               .sort([*IDENTITY, "seq"]))
    first = pl.col("seq") == pl.col("seq").min().over(IDENTITY)
    prior_value = pl.when(first).then(pl.col("stored_value")).otherwise(pl.col("value").shift(1).over(IDENTITY))
    prior_duration = (pl.when(first).then(pl.col("stored_duration"))
                      .otherwise(pl.col("duration").shift(1).over(IDENTITY)))
    prior_exists = pl.when(first).then(pl.col("stored_").fill_null(False)).otherwise(pl.lit(True))
    classified = ordered.with_columns(
        status=pl.when(~prior_exists).then(pl.lit("new"))
        .when((pl.col("value") == prior_value) & pl.col("duration").eq_missing(prior_duration)).then(pl.lit("dup"))
        .otherwise(pl.lit("rev")),
    )
    counts = classified.group_by("key").agg(
        new=(pl.col("status") == "new").sum(), duplicates=(pl.col("status") == "dup").sum(),
        revisions=(pl.col("status") == "rev").sum(),
    )
    last = classified.filter(pl.col("seq") == pl.col("seq").max().over(IDENTITY))
    changed = last.filter(
        pl.col("stored_").is_null()
        | (pl.col("value") != pl.col("stored_value"))
        | ~pl.col("duration").eq_missing(pl.col("stored_duration"))
    ).sort("seq").select(columns)
    rows = pl.concat([stored.join(changed.select(IDENTITY), on=IDENTITY, how="anti", nulls_equal=True),
                      changed], how="vertical")
    return Deduplicated(rows=rows, changed=changed, counts=counts)

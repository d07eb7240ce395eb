"""The one function that validates a sample frame and cuts it into batches: the heart of the stage.

Every input sample ends up exactly once either in a batch or in a reject (``Normalized``
carries the input count so that callers and property tests can check it). A normalizer builds
one frame for many pages and calls ``cut_batches`` once; ``cut_page`` is the one-page form.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import orjson
import polars as pl

from models.errors import Reason
from models.providers import Provider
from models.raw import RawPage
from models.samples import Attribute, Metric, Resolution, SampleBatch, Unit
from streams.normalize.base import Normalized, Rejected
from streams.normalize.validate import reject_reasons

__all__ = ["BatchSpec", "Originals", "cut_batches", "cut_page", "originals_of"]

#: ``originals(indices)``: the input entries of a page's rejected rows, for the dead letter.
Originals = Callable[[Sequence[int]], list[Any]]


def originals_of(entries: Sequence[Any]) -> Originals:
    """The ``Originals`` of a page whose row ``idx`` is ``entries[idx]``."""
    return lambda rows: [entries[i] for i in rows]


@dataclass(frozen=True, slots=True)
class BatchSpec:
    """What every batch cut from one page's rows shares.

    :param research_id: the participant.
    :param metric, unit, resolution: what the values are.
    :param page: the raw page (source, fetch time and request id of the batches).
    :param attributes: batch-level vendor facts (a sleep log's id and type, a device's model).
    """

    research_id: str
    metric: Metric
    unit: Unit
    resolution: Resolution
    page: RawPage
    attributes: dict[str, Attribute] = field(default_factory=dict)

    @property
    def source(self) -> Provider:
        return self.page.provider


def cut_page(frame: pl.DataFrame, spec: BatchSpec, *, original: Originals) -> Normalized:
    """``cut_batches`` for the frame of a single page."""
    return cut_batches(frame.with_columns(page=pl.lit(0, dtype=pl.Int64)), [spec], [original])[0]


def cut_batches(frame: pl.DataFrame, specs: Sequence[BatchSpec], originals: Sequence[Originals]) -> list[Normalized]:
    """Validate the sample rows of many pages at once and cut the good rows into batches.

    One vectorised pass for all the pages (per-page Polars calls would cost more than the work).
    ``frame`` columns: ``page`` (index into ``specs``), ``idx`` (row of that page's input),
    ``ts`` (UTC epoch s, null if the time was unusable), ``offset`` (s), ``local_date`` (ISO),
    ``value`` (Float64, null if unusable), optional ``label``, ``duration`` and ``time_reason``.
    The pages share one metric and resolution. ``originals[page](indices)`` returns the input
    entries of rejected rows, for the dead letter. A page's batches are cut by
    (local_date, offset), in time order; a date with rejects only gets an empty batch.
    """
    results = [Normalized() for _ in specs]
    if frame.height == 0:
        return results
    for page, n in frame.group_by("page").len().iter_rows():
        results[page].input_samples = n
    if "time_reason" not in frame.columns:
        frame = frame.with_columns(time_reason=pl.lit(None, dtype=pl.String))
    checked = frame.with_columns(reason=reject_reasons(specs[0].metric, specs[0].resolution))
    bad = checked.filter(pl.col("reason").is_not_null())
    rejected_at = _rejects(bad, specs, originals, results) if bad.height else {}
    good = checked.filter(pl.col("reason").is_null())
    columns = ["ts", "value", *(c for c in ("label", "duration") if c in good.columns)]
    # Batches in order of their first sample: group number = first row of the group in time order.
    good = (good.sort("page", "ts", maintain_order=True).with_row_index("row")
            .with_columns(group=pl.col("row").min().over("page", "local_date", "offset"))
            .sort("group", maintain_order=True))
    groups = good.group_by("group", maintain_order=True).agg(
        pl.col("page").first(), pl.col("local_date").first(), pl.col("offset").first(), n=pl.len())
    lists = {name: good[name].to_list() for name in columns}
    position = 0
    for _, page, local_date, offset, n in groups.iter_rows():
        part = slice(position, position + n)
        position += n
        results[page].batches.append(_batch(
            specs[page], utc_offset_s=int(offset), local_date=str(local_date),
            rejected_timestamps=rejected_at.pop((page, str(local_date)), []),
            timestamps=lists["ts"][part], values=lists["value"][part],
            labels=lists["label"][part] if "label" in lists else None,
            durations=lists["duration"][part] if "duration" in lists else None))
    for (page, local_date), times in rejected_at.items():  # a date with rejects only: an empty batch carries them
        rows = bad.filter((pl.col("page") == page) & (pl.col("local_date") == local_date))
        offset = int(cast("float | None", rows["offset"].drop_nulls().first()) or 0)  # a number column
        results[page].batches.append(_batch(specs[page], utc_offset_s=offset, local_date=local_date,
                                            rejected_timestamps=times, timestamps=[], values=[]))
    return results


def _rejects(bad: pl.DataFrame, specs: Sequence[BatchSpec], originals: Sequence[Originals],
             results: list[Normalized]) -> dict[tuple[int, str], list[int]]:
    """Record the rejects of each page; return the rejected times per (page, local date)."""
    for (page, reason), rows in bad.group_by(["page", "reason"], maintain_order=True):
        indices = rows["idx"].to_list()
        metric = specs[page].metric.value
        results[page].rejects.append(Rejected(
            reason=Reason(str(reason)), count=len(indices),
            detail=f"{len(indices)} {metric} sample(s) rejected: {reason}",
            original=orjson.dumps(originals[page](indices)),
        ))
    timed = bad.filter(pl.col("ts").is_not_null() & pl.col("local_date").is_not_null())
    return {(int(page), str(day)): rows["ts"].unique().sort().to_list()
            for (page, day), rows in timed.group_by(["page", "local_date"], maintain_order=True)}


def _batch(spec: BatchSpec, **columns: Any) -> SampleBatch:
    return SampleBatch(research_id=spec.research_id, metric=spec.metric, unit=spec.unit, resolution=spec.resolution,
                       source=spec.source, fetched_at=spec.page.fetched_at, request_id=spec.page.request_id,
                       attributes=dict(spec.attributes), **columns)

"""What a normalizer returns, and the one function that cuts a sample frame into batches.

Every input sample ends up exactly once either in a batch or in a reject; ``Normalized``
carries the input count so that callers (and property tests) can check it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import polars as pl

from models.errors import Reason
from models.providers import Provider
from models.raw import RawPage
from models.samples import Attribute, Metric, Resolution, SampleBatch, Unit
from streams.normalize.validate import reject_reasons

__all__ = ["BatchSpec", "Normalized", "Rejected", "split_into_batches", "split_pages"]


@dataclass(frozen=True, slots=True)
class Rejected:
    """Samples of one page rejected for one reason, with their original vendor JSON."""

    reason: Reason
    count: int
    detail: str
    original: bytes


@dataclass(slots=True)
class Normalized:
    """The batches and rejects of one page; ``input_samples`` = accepted + rejected."""

    batches: list[SampleBatch] = field(default_factory=list)
    rejects: list[Rejected] = field(default_factory=list)
    input_samples: int = 0

    @property
    def samples(self) -> int:
        return sum(len(b) for b in self.batches)

    @property
    def rejected(self) -> int:
        return sum(r.count for r in self.rejects)

    def extend(self, other: Normalized) -> None:
        self.batches += other.batches
        self.rejects += other.rejects
        self.input_samples += other.input_samples


@dataclass(frozen=True, slots=True)
class BatchSpec:
    """What every batch cut from one frame shares."""

    research_id: str
    metric: Metric
    unit: Unit
    resolution: Resolution
    page: RawPage
    attributes: dict[str, Attribute] = field(default_factory=dict)

    @property
    def source(self) -> Provider:
        return self.page.provider


def split_into_batches(frame: pl.DataFrame, spec: BatchSpec, *,
                       original: Callable[[Sequence[int]], list[Any]]) -> Normalized:
    """``split_pages`` for the frame of a single page."""
    return split_pages(frame.with_columns(page=pl.lit(0, dtype=pl.Int64)), [spec], [original])[0]


def split_pages(frame: pl.DataFrame, specs: Sequence[BatchSpec],
                originals: Sequence[Callable[[Sequence[int]], list[Any]]]) -> list[Normalized]:
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
        offset = int(rows["offset"].drop_nulls().first() or 0)  # type: ignore[arg-type]
        results[page].batches.append(_batch(specs[page], utc_offset_s=offset, local_date=local_date,
                                            rejected_timestamps=times, timestamps=[], values=[]))
    return results


def _rejects(bad: pl.DataFrame, specs: Sequence[BatchSpec],
             originals: Sequence[Callable[[Sequence[int]], list[Any]]],
             results: list[Normalized]) -> dict[tuple[int, str], list[int]]:
    """Record the rejects of each page; return the rejected times per (page, local date)."""
    for (page, reason), rows in bad.group_by(["page", "reason"], maintain_order=True):
        indices = rows["idx"].to_list()
        metric = specs[page].metric.value  # type: ignore[index]
        results[page].rejects.append(Rejected(  # type: ignore[index]
            reason=Reason(str(reason)), count=len(indices),
            detail=f"{len(indices)} {metric} sample(s) rejected: {reason}",
            original=orjson.dumps(originals[page](indices)),  # type: ignore[index]
        ))
    timed = bad.filter(pl.col("ts").is_not_null() & pl.col("local_date").is_not_null())
    return {(int(page), str(day)): rows["ts"].unique().sort().to_list()  # type: ignore[arg-type]
            for (page, day), rows in timed.group_by(["page", "local_date"], maintain_order=True)}


def _batch(spec: BatchSpec, **columns: Any) -> SampleBatch:
    return SampleBatch(research_id=spec.research_id, metric=spec.metric, unit=spec.unit, resolution=spec.resolution,
                       source=spec.source, fetched_at=spec.page.fetched_at, request_id=spec.page.request_id,
                       attributes=dict(spec.attributes), **columns)

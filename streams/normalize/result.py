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

__all__ = ["BatchSpec", "Normalized", "Rejected", "split_into_batches"]


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
    """Validate a sample frame and cut the good rows into batches by (local_date, offset).

    ``frame`` columns: ``idx`` (row of the input), ``ts`` (UTC epoch s, null if the time was
    unusable), ``offset`` (s), ``local_date`` (ISO), ``value`` (Float64, null if unusable),
    optional ``label`` and ``duration``. ``original(indices)`` returns the input entries of
    rejected rows, for the dead letter.
    """
    result = Normalized(input_samples=frame.height)
    if frame.height == 0:
        return result
    if "time_reason" not in frame.columns:
        frame = frame.with_columns(time_reason=pl.lit(None, dtype=pl.String))
    checked = frame.with_columns(reason=reject_reasons(spec.metric, spec.resolution))
    bad = checked.filter(pl.col("reason").is_not_null())
    for (reason,), rows in bad.group_by(["reason"], maintain_order=True):
        indices = rows["idx"].to_list()
        result.rejects.append(Rejected(
            reason=Reason(str(reason)), count=len(indices),
            detail=f"{len(indices)} {spec.metric.value} sample(s) rejected: {reason}",
            original=orjson.dumps(original(indices)),
        ))
    rejected_at: dict[str, list[int]] = {
        str(day): rows["ts"].unique().sort().to_list()
        for (day,), rows in bad.filter(pl.col("ts").is_not_null() & pl.col("local_date").is_not_null())
        .group_by(["local_date"], maintain_order=True)
    }
    good = checked.filter(pl.col("reason").is_null()).sort("ts", maintain_order=True)
    columns = ["ts", "value", *(c for c in ("label", "duration") if c in good.columns)]
    fields = {"research_id": spec.research_id, "metric": spec.metric, "unit": spec.unit,
              "resolution": spec.resolution, "source": spec.source, "fetched_at": spec.page.fetched_at,
              "request_id": spec.page.request_id}
    for (local_date, offset), rows in good.group_by(["local_date", "offset"], maintain_order=True):
        result.batches.append(SampleBatch.from_frame(
            rows.select(columns), utc_offset_s=int(offset), local_date=str(local_date),
            attributes=dict(spec.attributes), rejected_timestamps=rejected_at.pop(str(local_date), []), **fields,
        ))
    for local_date, times in rejected_at.items():  # a date with rejects only: an empty batch carries them
        offset = int(bad.filter(pl.col("local_date") == local_date)["offset"].drop_nulls().first() or 0)
        result.batches.append(SampleBatch(timestamps=[], values=[], utc_offset_s=offset, local_date=local_date,
                                          rejected_timestamps=times, **fields))
    return result

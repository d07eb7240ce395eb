"""SampleBatch: the canonical columnar record of the ``samples`` and ``intraday`` topics.

One batch is one participant, one metric, one local date and one UTC offset: a minute-level
day is one batch of ~1,440 samples (a DST day or a time-zone change splits it at the offset
change). Columns are parallel lists; ``to_frame`` hands them to Polars for vectorised work.

Sample identity (the dedup key) is (research_id, metric, timestamp) and, for labelled
metrics (vendor daily figures, sleep stages), the label too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

import orjson
import polars as pl

from models._validate import list_of, load_object, req, req_float, req_int, req_str
from models.errors import DecodeError, Reason
from models.providers import Provider

__all__ = ["SAMPLES_SCHEMA_VERSION", "Metric", "Resolution", "SampleBatch", "Unit", "deletion_runs"]

SAMPLES_SCHEMA_VERSION = 1


class Metric(StrEnum):
    STEPS = "steps"  # steps per interval (minute)
    HEART_RATE = "heart_rate"  # beats per minute at an instant
    SLEEP_STAGE = "sleep_stage"  # one segment of a sleep log: label = level, duration in seconds
    VENDOR_DAILY = "vendor_daily"  # the vendor's own daily figures: label = field (steps, calories_out, ...)
    VENDOR_SLEEP = "vendor_sleep"  # the vendor's per-log sleep summary: label = field; timestamp = log start
    DEVICE = "device"  # a device's last sync: value = battery level (%), attributes = the rest


class Unit(StrEnum):
    STEPS = "steps"
    BPM = "bpm"
    SECONDS = "s"
    MINUTES = "min"
    PERCENT = "percent"
    MIXED = "mixed"  # labelled figures, each in its own unit (documented per label)


class Resolution(StrEnum):
    SECOND = "1s"
    MINUTE = "1min"
    SEGMENT = "segment"  # variable-length intervals, durations[] given
    DAY = "day"
    EVENT = "event"


Attribute = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class SampleBatch:
    """A columnar batch of one participant's samples of one metric on one local date.

    :param research_id: the pseudonymous participant key.
    :param metric, unit, resolution: what the values are.
    :param source: the provider they came from (becomes ``src_id`` in outputs).
    :param utc_offset_s: local time minus UTC, in seconds, for every sample of the batch.
    :param local_date: the participant's local calendar date (ISO) of the samples
        (for sleep: the date the sleep log ended, as Fitbit files it).
    :param timestamps: UTC epoch seconds, one per sample.
    :param values: the sample values, parallel to ``timestamps``.
    :param labels: per-sample label for labelled metrics, else None.
    :param durations: per-sample duration in seconds for segment resolution, else None.
    :param fetched_at: when the page holding these samples was fetched (epoch seconds).
    :param request_id: the raw page's request id (provenance).
    :param attributes: batch-level vendor facts (e.g. sleep log type, is_main_sleep).
    :param rejected_timestamps: UTC times of samples of this local date the normalizer rejected
        (so that the day can count its rejects once, however often the page is replayed).
    :param deleted: ``[start, end)`` UTC epoch-second intervals whose samples of this metric on this
        local date the vendor withdrew (a DELETE notification): the day forgets them, so a sample
        sent again later is new. A deletion batch usually has no samples of its own.
    """

    research_id: str
    metric: Metric
    unit: Unit
    resolution: Resolution
    source: Provider
    utc_offset_s: int
    local_date: str
    timestamps: list[int]
    values: list[float]
    labels: list[str] | None = None
    durations: list[int] | None = None
    fetched_at: float = 0.0
    request_id: str = ""
    attributes: dict[str, Attribute] = field(default_factory=dict)
    rejected_timestamps: list[int] = field(default_factory=list)
    deleted: list[list[int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.timestamps)
        if len(self.values) != n:
            raise DecodeError(f"{len(self.values)} values for {n} timestamps", reason=Reason.BAD_FIELD,
                              field="values")
        for name in ("labels", "durations"):
            column = getattr(self, name)
            if column is not None and len(column) != n:
                raise DecodeError(f"{len(column)} {name} for {n} timestamps", reason=Reason.BAD_FIELD, field=name)
        if not -18 * 3600 <= self.utc_offset_s <= 18 * 3600:
            raise DecodeError(f"{self.utc_offset_s} s is not a UTC offset", reason=Reason.BAD_FIELD,
                              field="utc_offset_s")

    def __len__(self) -> int:
        return len(self.timestamps)

    @property
    def date(self) -> date:
        return date.fromisoformat(self.local_date)

    def to_frame(self) -> pl.DataFrame:
        """The samples as a DataFrame: ``ts`` (Int64), ``value`` (Float64), optional ``label``, ``duration``."""
        columns: dict[str, pl.Series] = {
            "ts": pl.Series("ts", self.timestamps, dtype=pl.Int64),
            "value": pl.Series("value", self.values, dtype=pl.Float64),
        }
        if self.labels is not None:
            columns["label"] = pl.Series("label", self.labels, dtype=pl.String)
        if self.durations is not None:
            columns["duration"] = pl.Series("duration", self.durations, dtype=pl.Int64)
        return pl.DataFrame(columns)

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": SAMPLES_SCHEMA_VERSION, "research_id": self.research_id, "metric": self.metric.value,
            "unit": self.unit.value, "resolution": self.resolution.value, "source": self.source.value,
            "utc_offset_s": self.utc_offset_s, "local_date": self.local_date, "timestamps": self.timestamps,
            "values": self.values, "labels": self.labels, "durations": self.durations,
            "fetched_at": self.fetched_at, "request_id": self.request_id, "attributes": self.attributes,
            "rejected_timestamps": self.rejected_timestamps,
            **({"deleted": self.deleted} if self.deleted else {}),
        }

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.to_dict())

    @classmethod
    def from_bytes(cls, data: bytes) -> SampleBatch:
        return cls.from_dict(load_object(data, "sample batch"))

    @classmethod
    def from_dict(cls, record: Any) -> SampleBatch:
        if not isinstance(record, dict):
            raise DecodeError("sample batch is not an object", reason=Reason.BAD_ENVELOPE)
        version = req_int(record, "v")
        if version != SAMPLES_SCHEMA_VERSION:
            raise DecodeError(f"schema version {version} is not supported", reason=Reason.UNSUPPORTED_SCHEMA,
                              field="v")
        try:
            metric = Metric(req_str(record, "metric"))
            unit = Unit(req_str(record, "unit"))
            resolution = Resolution(req_str(record, "resolution"))
            source = Provider(req_str(record, "source"))
        except ValueError as error:
            raise DecodeError(str(error), reason=Reason.BAD_FIELD, field="metric/unit/resolution/source") from None
        local_date = req_str(record, "local_date")
        try:
            date.fromisoformat(local_date)
        except ValueError:
            raise DecodeError("is not an ISO date", reason=Reason.BAD_FIELD, field="local_date") from None
        # Element types and shapes are checked here, not left to Polars: a wrong one would
        # otherwise fail (TypeError, a Series build error) where the sink writes, far from the record.
        # Values, labels and durations may hold nulls (a device without a battery level; a
        # duration the vendor did not give); timestamps never do.
        labels, durations = record.get("labels"), record.get("durations")
        return cls(
            research_id=req_str(record, "research_id"), metric=metric, unit=unit, resolution=resolution,
            source=source, utc_offset_s=req_int(record, "utc_offset_s"), local_date=local_date,
            timestamps=list_of(req(record, "timestamps"), "timestamps", "int"),
            values=list_of(req(record, "values"), "values", "number", nullable=True),
            labels=None if labels is None else list_of(labels, "labels", "str", nullable=True),
            durations=None if durations is None else list_of(durations, "durations", "int", nullable=True),
            fetched_at=req_float(record, "fetched_at") if record.get("fetched_at") is not None else 0.0,
            request_id=str(record.get("request_id") or ""),
            attributes=_attributes(record.get("attributes")),
            rejected_timestamps=list_of(record.get("rejected_timestamps") or [], "rejected_timestamps", "int"),
            deleted=_intervals(record.get("deleted")),
        )

    @property
    def is_deletion(self) -> bool:
        return bool(self.deleted)

    @classmethod
    def from_frame(cls, frame: pl.DataFrame, **fields: Any) -> SampleBatch:
        """Build a batch from a frame with ``ts``, ``value`` and optional ``label``/``duration`` columns."""
        return cls(
            timestamps=frame["ts"].to_list(), values=frame["value"].to_list(),
            labels=frame["label"].to_list() if "label" in frame.columns else None,
            durations=frame["duration"].to_list() if "duration" in frame.columns else None,
            **fields,
        )




def deletion_runs(batches: Sequence[SampleBatch]) -> list[tuple[bool, list[int]]]:
    """Positions of consecutive additions and of consecutive deletion batches, in order: what
    applies batches in arrival order, since a deletion must see what came before it and not
    what came after (usually there is one run, of additions)."""
    runs: list[tuple[bool, list[int]]] = []
    for position, batch in enumerate(batches):
        deleting = bool(batch.deleted)
        if runs and runs[-1][0] is deleting:
            runs[-1][1].append(position)
        else:
            runs.append((deleting, [position]))
    return runs


def _attributes(value: Any) -> dict[str, Attribute]:
    """``attributes``: an object of scalars (strings, numbers, booleans, nulls), as ``Attribute`` says."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
            isinstance(v, str | int | float | bool) or v is None for v in value.values()):
        raise DecodeError("expected an object of strings, numbers, booleans or nulls", reason=Reason.BAD_FIELD,
                          field="attributes")
    return value


def _intervals(value: Any) -> list[list[int]]:
    """``deleted``: a list of [start, end) integer pairs with start <= end."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(
            isinstance(pair, list) and len(pair) == 2 and all(isinstance(t, int) and not isinstance(t, bool)
                                                             for t in pair) and pair[0] <= pair[1]
            for pair in value):
        raise DecodeError("expected [start, end) pairs of epoch seconds", reason=Reason.BAD_FIELD, field="deleted")
    return [list(pair) for pair in value]

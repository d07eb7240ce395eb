"""DailySummary: a record of the compacted ``daily`` topic (key ``research_id|local date``).

The fields are docs/architecture.md's "Daily summary content". Numbers that a day may lack
(no heart rate, no vendor total, no sleep) are None rather than 0, so that "missing" and
"zero" differ.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import date
from typing import Any

import orjson

from models._validate import Kind, check_value, load_object, mapping_of, req_int, req_str
from models.errors import DecodeError, Reason

__all__ = ["DAILY_SCHEMA_VERSION", "HR_ZONES", "DailySummary", "daily_key"]

DAILY_SCHEMA_VERSION = 1
HR_ZONES = ("Out of Range", "Fat Burn", "Cardio", "Peak")


def daily_key(research_id: str, local_date: str) -> str:
    return f"{research_id}|{local_date}"


@dataclass(frozen=True, slots=True)
class DailySummary:
    """One participant's local calendar day, summarised; upserted by key, newest revision wins."""

    research_id: str
    local_date: str
    revision: int
    final: bool = False
    late: bool = False
    # steps
    steps: int = 0  # sum of the deduplicated intraday step samples of the day
    vendor_steps: int | None = None  # the vendor's own daily total, kept beside it
    # heart rate
    hr_min: float | None = None
    hr_max: float | None = None
    hr_mean: float | None = None
    minutes_with_hr: int = 0
    vendor_resting_hr: float | None = None
    approx_resting_hr: float | None = None  # 10th percentile of HR in 10-minute windows with zero steps
    zone_minutes: dict[str, int] = field(default_factory=dict)  # the four Fitbit zones
    # wear and validity
    hours_with_steps: int = 0
    valid_day: bool = False
    # sleep ending this day
    sleep_minutes_asleep: int | None = None
    sleep_minutes_in_bed: int | None = None
    sleep_stage_minutes: dict[str, int] = field(default_factory=dict)
    # bookkeeping
    samples: int = 0
    duplicates: int = 0
    revisions: int = 0
    rejects: int = 0
    first_sample_at: int | None = None
    last_sample_at: int | None = None
    source: str | None = None  # the provider of the day's samples (``src_id`` in the Parquet tables)

    def __post_init__(self) -> None:
        try:
            date.fromisoformat(self.local_date)
        except ValueError:
            raise DecodeError("is not an ISO date", reason=Reason.BAD_FIELD, field="local_date") from None
        if self.revision < 1:
            raise DecodeError("must be at least 1", reason=Reason.BAD_FIELD, field="revision")

    @property
    def key(self) -> str:
        return daily_key(self.research_id, self.local_date)

    def to_bytes(self) -> bytes:
        return orjson.dumps({"v": DAILY_SCHEMA_VERSION, **asdict(self)})

    @classmethod
    def from_bytes(cls, data: bytes) -> DailySummary:
        record = load_object(data, "daily summary")
        if req_int(record, "v") != DAILY_SCHEMA_VERSION:
            raise DecodeError("schema version is not supported", reason=Reason.UNSUPPORTED_SCHEMA, field="v")
        req_str(record, "research_id")
        known = {f.name for f in fields(cls)}
        unknown = set(record) - known - {"v"}
        if unknown:
            raise DecodeError(f"unknown field(s) {sorted(unknown)}", reason=Reason.BAD_FIELD, field=sorted(unknown)[0])
        for name, value in record.items():
            if name != "v":
                _check_field(name, value)
        try:
            return cls(**{k: v for k, v in record.items() if k != "v"})
        except TypeError as error:
            raise DecodeError(str(error), reason=Reason.MISSING_FIELD) from None


# What each field's annotation allows (the sink builds typed Parquet columns from them, so a
# string of steps or a list of zone minutes must be refused here, not where it is written).
# Built from the annotations, so a new field of a new type fails at import until it is listed.
_CHECKS: dict[str, tuple[Kind, bool]] = {  # annotation → (kind, nullable)
    "str": ("str", False), "int": ("int", False), "bool": ("bool", False), "str | None": ("str", True),
    "int | None": ("int", True), "float | None": ("number", True),
}
_MAPPINGS: dict[str, Kind] = {"dict[str, int]": "int"}  # annotation → the kind of its values
_FIELD_TYPES = {f.name: str(f.type) for f in fields(DailySummary)}
if unchecked := {t for t in _FIELD_TYPES.values() if t not in _CHECKS and t not in _MAPPINGS}:
    raise TypeError(f"DailySummary: no decode check for annotation(s) {sorted(unchecked)}")


def _check_field(name: str, value: Any) -> None:
    annotation = _FIELD_TYPES[name]
    if annotation in _MAPPINGS:
        mapping_of(value, name, _MAPPINGS[annotation])
    else:
        kind, nullable = _CHECKS[annotation]
        check_value(value, name, kind, nullable=nullable)

"""Google Health API v4 ``dataPoints`` list pages → SampleBatches.

Shapes (v4 REST reference, ``users.dataTypes.dataPoints``): int64 values arrive as strings,
offsets and durations as protobuf Duration strings (``"-18000s"``, ``"920.400s"``), physical
times as RFC 3339 UTC. ``steps`` points carry an ``interval``; ``heartRate`` points a
``sampleTime``; ``dailyRestingHeartRate`` a civil ``date``; ``sleep`` an interval, a summary and
``stages``. The local date of a sample is its physical time plus its own UTC offset
(docs/vendors.md, "Google Health API"). Every data type is one list page of ``dataPoints``;
one ``GoogleHealthNormalizer`` per data type reads the list and hands the points to its reader.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import Any

import polars as pl

from models import labels
from models._validate import req_list
from models.errors import Reason
from models.providers import Provider
from models.raw import RawPage
from models.samples import Metric, Resolution, Unit
from streams.normalize.base import Normalized, Normalizer, PerPageNormalizer
from streams.normalize.batching import BatchSpec, cut_page, originals_of
from streams.normalize.figures import daily_figures, figures_at
from streams.normalize.parsing import as_list, as_mapping, as_number, json_object, load_json, parse_duration_s
from streams.normalize.timeconv import Zone

__all__ = ["NORMALIZERS", "GoogleHealthNormalizer"]

_MAX_OFFSET_S = 18 * 3600  # the widest UTC offset a SampleBatch accepts
_SLEEP_SUMMARY = {  # Google sleep summary field → our label
    "minutesAsleep": labels.MINUTES_ASLEEP, "minutesAwake": labels.MINUTES_AWAKE,
    "minutesInSleepPeriod": labels.TIME_IN_BED, "minutesAfterWakeUp": labels.MINUTES_AFTER_WAKEUP,
    "minutesToFallAsleep": labels.MINUTES_TO_FALL_ASLEEP,
}

PointsReader = Callable[[Sequence[Any], RawPage, str], Normalized]


class GoogleHealthNormalizer(PerPageNormalizer):
    """One Google Health data type: a ``dataPoints`` list page → its batches.

    :param data_type: the ``RawPage.data_type`` (``steps``, ``heart-rate``, ...).
    :param read_points: ``(points, page, research_id) -> Normalized`` for that data type.
    """

    provider = Provider.GOOGLE_HEALTH

    def __init__(self, data_type: str, read_points: PointsReader) -> None:
        self.data_types = (data_type,)
        self._read_points = read_points

    def normalize_page(self, page: RawPage, research_id: str, *, secret: bytes) -> Normalized:
        del secret  # no identifiers to pseudonymize in these data types
        body = json_object(load_json(page.body))
        points = req_list(body, "dataPoints") if "dataPoints" in body else []  # an empty page omits the list
        return self._read_points(points, page, research_id)


def _columns(points: Sequence[Any], paths: dict[str, tuple[str, ...]]) -> pl.DataFrame:
    """Pull nested fields out of the points as String columns (nulls where absent).

    Polars builds the struct columns for well-formed pages; a malformed page falls back to
    walking each point (only then).
    """
    try:
        frame = pl.DataFrame({"p": points}) if points else pl.DataFrame({"p": []})
        exprs = []
        for name, path in paths.items():
            expr = pl.col("p")
            for step in path:
                expr = expr.struct.field(step)
            exprs.append(expr.cast(pl.String).alias(name))
        if not points:
            return pl.DataFrame({n: [] for n in paths}, schema=dict.fromkeys(paths, pl.String))
        return frame.select(exprs)
    except (TypeError, ValueError, pl.exceptions.PolarsError):
        return pl.DataFrame({name: [_walk(p, path) for p in points] for name, path in paths.items()},
                            schema=dict.fromkeys(paths, pl.String))


def _walk(point: Any, path: tuple[str, ...]) -> str | None:
    for step in path:
        if not isinstance(point, Mapping):
            return None
        point = point.get(step)
    return None if point is None or isinstance(point, Mapping | list) else str(point)


def _timed(frame: pl.DataFrame, time_col: str, offset_col: str) -> pl.DataFrame:
    """Add ``ts``, ``offset`` and ``local_date`` from an RFC 3339 time and a Duration offset."""
    # proto3 JSON may omit a zero Duration: a missing offset is UTC.
    offset = (pl.col(offset_col).str.strip_suffix("s").cast(pl.Float64, strict=False).fill_null(0).round()
              .cast(pl.Int64, strict=False))
    # An offset no zone has makes the time unusable (rejected as a bad time), not the page.
    utc = pl.when(offset.is_between(-_MAX_OFFSET_S, _MAX_OFFSET_S)).then(
        pl.col(time_col).str.to_datetime(time_zone="UTC", strict=False, time_unit="us").dt.epoch("s"))
    return frame.with_columns(ts=utc, offset=offset).with_columns(
        local_date=pl.from_epoch(pl.col("ts") + pl.col("offset"), time_unit="s").dt.date().cast(pl.String),
    )


def _intervals(points: Sequence[Any], page: RawPage, research_id: str) -> Normalized:
    frame = _columns(points, {
        "count": ("steps", "count"), "start": ("steps", "interval", "startTime"),
        "end": ("steps", "interval", "endTime"), "start_offset": ("steps", "interval", "startUtcOffset"),
    })
    frame = _timed(frame, "start", "start_offset").with_columns(
        idx=pl.int_range(pl.len()), value=pl.col("count").cast(pl.Float64, strict=False),
        duration=(pl.col("end").str.to_datetime(time_zone="UTC", strict=False, time_unit="us").dt.epoch("s")
                  - pl.col("ts")),
    )
    minute = frame.height == 0 or bool(frame["duration"].drop_nulls().eq(60).all())
    resolution = Resolution.MINUTE if minute else Resolution.SEGMENT
    frame = frame.select("idx", "ts", "offset", "local_date", "value", *([] if minute else ["duration"]))
    spec = BatchSpec(research_id, Metric.STEPS, Unit.STEPS, resolution, page)
    return cut_page(frame, spec, original=originals_of(points))


def _heart_rate(points: Sequence[Any], page: RawPage, research_id: str) -> Normalized:
    frame = _columns(points, {
        "bpm": ("heartRate", "beatsPerMinute"), "time": ("heartRate", "sampleTime", "physicalTime"),
        "offset_s": ("heartRate", "sampleTime", "utcOffset"),
    })
    frame = _timed(frame, "time", "offset_s").with_columns(
        idx=pl.int_range(pl.len()), value=pl.col("bpm").cast(pl.Float64, strict=False),
    ).select("idx", "ts", "offset", "local_date", "value")
    spec = BatchSpec(research_id, Metric.HEART_RATE, Unit.BPM, Resolution.SECOND, page)
    return cut_page(frame, spec, original=originals_of(points))


def _resting(points: Sequence[Any], page: RawPage, research_id: str) -> Normalized:
    zone = Zone(page.timezone, None) if page.timezone else Zone(None, (page.utc_offset_ms or 0) // 1000)
    spec = BatchSpec(research_id, Metric.VENDOR_DAILY, Unit.MIXED, Resolution.DAY, page)
    result = Normalized()
    for i, point in enumerate(points):  # one point per day
        resting = point.get("dailyRestingHeartRate") if isinstance(point, Mapping) else None
        day = _civil_date(resting.get("date") if isinstance(resting, Mapping) else None)
        if day is None or not isinstance(resting, Mapping):
            result.extend(_unusable_point(point, f"dataPoints[{i}].dailyRestingHeartRate.date", spec))
            continue
        result.extend(daily_figures([(labels.RESTING_HEART_RATE, resting.get("beatsPerMinute"))], day, zone, spec))
    return result


def _sleep(points: Sequence[Any], page: RawPage, research_id: str) -> Normalized:
    result = Normalized()
    for i, point in enumerate(points):  # one point per sleep session
        session = point.get("sleep") if isinstance(point, Mapping) else None
        interval = as_mapping(session.get("interval")) if isinstance(session, Mapping) else {}
        end = _instant(interval.get("endTime"), interval.get("endUtcOffset"))
        if not isinstance(session, Mapping) or end["local_date"][0] is None:
            # Not a session, or one that cannot be filed under the date it ended: one reject.
            spec = BatchSpec(research_id, Metric.SLEEP_STAGE, Unit.SECONDS, Resolution.SEGMENT, page)
            result.extend(_unusable_point(point, f"dataPoints[{i}].sleep", spec))
            continue
        result.extend(_sleep_session(session, interval, end, page, research_id))
    return result


def _sleep_session(session: Mapping[str, Any], interval: Mapping[str, Any], end: pl.DataFrame, page: RawPage,
                   research_id: str) -> Normalized:
    ended = end["local_date"][0]
    metadata = as_mapping(session.get("metadata"))
    attributes = {"is_main_sleep": bool(metadata.get("mainSleep")), "nap": bool(metadata.get("nap")),
                  "type": str(session.get("type") or "STAGES").lower(), "sleep_date": ended,
                  "log_id": str(session.get("name") or interval.get("startTime"))}
    stages = as_list(session.get("stages"))
    frame = _columns(stages, {"type": ("type",), "start": ("startTime",), "end": ("endTime",),
                              "duration": ("duration",), "offset_s": ("startUtcOffset",)})
    frame = _timed(frame, "start", "offset_s").with_columns(
        idx=pl.int_range(pl.len()), label=pl.col("type").str.to_lowercase(),
        value=pl.coalesce(
            pl.col("end").str.to_datetime(time_zone="UTC", strict=False, time_unit="us").dt.epoch("s") - pl.col("ts"),
            pl.col("duration").str.strip_suffix("s").cast(pl.Float64, strict=False),
        ).cast(pl.Float64),
        local_date=pl.lit(ended, dtype=pl.String),
        offset=pl.col("offset").fill_null(end["offset"][0]),
    ).with_columns(duration=pl.col("value").round().cast(pl.Int64, strict=False))
    frame = frame.select("idx", "ts", "offset", "local_date", "value", "label", "duration")
    spec = BatchSpec(research_id, Metric.SLEEP_STAGE, Unit.SECONDS, Resolution.SEGMENT, page, attributes)
    result = cut_page(frame, spec, original=originals_of(stages))
    result.extend(_sleep_summary(session, interval, ended, page, research_id, attributes))
    return result


def _sleep_summary(session: Mapping[str, Any], interval: Mapping[str, Any], ended: str, page: RawPage,
                   research_id: str, attributes: dict[str, Any]) -> Normalized:
    """The session's own figures, at the session's start."""
    summary = as_mapping(session.get("summary"))
    figures = [(label, summary[key]) for key, label in _SLEEP_SUMMARY.items() if key in summary]
    for stage in summary.get("stagesSummary") or []:
        if isinstance(stage, Mapping) and isinstance(stage.get("type"), str):
            minutes = stage.get("minutes")
            if minutes is None and (seconds := parse_duration_s(stage.get("duration"))) is not None:
                minutes = seconds / 60
            figures.append((labels.stage_minutes(stage["type"].lower()), minutes))
    if not figures:
        return Normalized()
    start = _instant(interval.get("startTime"), interval.get("startUtcOffset"))
    spec = BatchSpec(research_id, Metric.VENDOR_SLEEP, Unit.MIXED, Resolution.EVENT, page, attributes)
    return figures_at(figures, ts=start["ts"][0], offset=start["offset"][0], local_date=ended, spec=spec)


def _instant(time: Any, offset: Any) -> pl.DataFrame:
    """``_timed`` of one RFC 3339 time and Duration offset (anything but strings counts as absent)."""
    text = {"t": time if isinstance(time, str) else None, "o": offset if isinstance(offset, str) else None}
    return _timed(pl.DataFrame({k: [v] for k, v in text.items()}, schema={"t": pl.String, "o": pl.String}), "t", "o")


def _civil_date(value: Any) -> date | None:
    if not isinstance(value, Mapping):
        return None
    try:
        return date(int(as_number(value.get("year")) or 0), int(as_number(value.get("month")) or 0),
                    int(as_number(value.get("day")) or 0))
    except (TypeError, ValueError, OverflowError):
        return None


def _unusable_point(point: Any, field: str, spec: BatchSpec) -> Normalized:
    """A point whose time cannot be read: one reject, so the accounting still holds."""
    frame = pl.DataFrame({"idx": [0], "ts": [None], "offset": [0], "local_date": [""], "value": [None],
                          "time_reason": [Reason.BAD_TIME.value]},
                         schema={"idx": pl.Int64, "ts": pl.Int64, "offset": pl.Int64, "local_date": pl.String,
                                 "value": pl.Float64, "time_reason": pl.String})
    return cut_page(frame, spec, original=lambda rows: [point])


#: One normalizer per data type we list (models/raw.py ``GOOGLE_HEALTH_DATA_TYPES``).
NORMALIZERS: tuple[Normalizer[Any], ...] = tuple(GoogleHealthNormalizer(data_type, reader) for data_type, reader in {
    "steps": _intervals, "heart-rate": _heart_rate, "daily-resting-heart-rate": _resting, "sleep": _sleep,
}.items())

"""Google Health API v4 ``dataPoints`` list pages → SampleBatches.

Shapes (v4 REST reference, ``users.dataTypes.dataPoints``): int64 values arrive as strings,
offsets and durations as protobuf Duration strings (``"-18000s"``, ``"920.400s"``), physical
times as RFC 3339 UTC. ``steps`` points carry an ``interval``; ``heartRate`` points a
``sampleTime``; ``dailyRestingHeartRate`` a civil ``date``; ``sleep`` an interval, a summary and
``stages``. The local date of a sample is its physical time plus its own UTC offset.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import Any

import polars as pl

from models._validate import req_list
from models.errors import DecodeError, Reason
from models.raw import RawPage
from models.samples import Metric, Resolution, Unit
from streams.normalize.common import as_number, daily_figures, load_json, numbers, parse_duration_s
from streams.normalize.result import BatchSpec, Normalized, split_into_batches
from streams.normalize.timeconv import Zone

__all__ = ["normalize_google_health"]

_RFC3339 = pl.Datetime("us", "UTC")
_SLEEP_SUMMARY = {
    "minutesAsleep": "minutes_asleep", "minutesAwake": "minutes_awake", "minutesInSleepPeriod": "time_in_bed",
    "minutesAfterWakeUp": "minutes_after_wakeup", "minutesToFallAsleep": "minutes_to_fall_asleep",
}


def normalize_google_health(page: RawPage, research_id: str, *, secret: bytes) -> Normalized:
    """Normalize one Google Health list page; a DecodeError means the whole page is unusable."""
    del secret  # no identifiers to pseudonymize in these data types
    body = load_json(page.body)
    if not isinstance(body, Mapping):
        raise DecodeError(f"expected a JSON object, got {type(body).__name__}", reason=Reason.BAD_FIELD, field="$")
    points = req_list(body, "dataPoints") if "dataPoints" in body else []  # an empty page omits the list
    if page.data_type == "steps":
        return _intervals(points, page, research_id)
    if page.data_type == "heart-rate":
        return _heart_rate(points, page, research_id)
    if page.data_type == "daily-resting-heart-rate":
        return _resting(points, page, research_id)
    if page.data_type == "sleep":
        return _sleep(points, page, research_id)
    raise DecodeError(f"no normalizer for {page.data_type!r}", reason=Reason.UNKNOWN_DATA_TYPE, field="data_type")


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
    utc = pl.col(time_col).str.to_datetime(time_zone="UTC", strict=False, time_unit="us").dt.epoch("s")
    # proto3 JSON may omit a zero Duration: a missing offset is UTC.
    offset = pl.col(offset_col).str.strip_suffix("s").cast(pl.Float64, strict=False).fill_null(0).round().cast(pl.Int64)
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
    return split_into_batches(frame, spec, original=_originals(points))


def _heart_rate(points: Sequence[Any], page: RawPage, research_id: str) -> Normalized:
    frame = _columns(points, {
        "bpm": ("heartRate", "beatsPerMinute"), "time": ("heartRate", "sampleTime", "physicalTime"),
        "offset_s": ("heartRate", "sampleTime", "utcOffset"),
    })
    frame = _timed(frame, "time", "offset_s").with_columns(
        idx=pl.int_range(pl.len()), value=pl.col("bpm").cast(pl.Float64, strict=False),
    ).select("idx", "ts", "offset", "local_date", "value")
    spec = BatchSpec(research_id, Metric.HEART_RATE, Unit.BPM, Resolution.SECOND, page)
    return split_into_batches(frame, spec, original=_originals(points))


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
        result.extend(daily_figures([("resting_heart_rate", resting.get("beatsPerMinute"))], day, zone, spec))
    return result


def _sleep(points: Sequence[Any], page: RawPage, research_id: str) -> Normalized:
    result = Normalized()
    for i, point in enumerate(points):  # one point per sleep session
        session = point.get("sleep") if isinstance(point, Mapping) else None
        if not isinstance(session, Mapping):
            spec = BatchSpec(research_id, Metric.SLEEP_STAGE, Unit.SECONDS, Resolution.SEGMENT, page)
            result.extend(_unusable_point(point, f"dataPoints[{i}].sleep", spec))
            continue
        result.extend(_sleep_session(session, page, research_id))
    return result


def _sleep_session(session: Mapping[str, Any], page: RawPage, research_id: str) -> Normalized:
    interval = session.get("interval") if isinstance(session.get("interval"), Mapping) else {}
    end = _timed(pl.DataFrame({"t": [interval.get("endTime")], "o": [interval.get("endUtcOffset")]},
                              schema={"t": pl.String, "o": pl.String}), "t", "o")
    ended = end["local_date"][0]
    metadata = session.get("metadata") if isinstance(session.get("metadata"), Mapping) else {}
    attributes = {"is_main_sleep": bool(metadata.get("mainSleep")), "nap": bool(metadata.get("nap")),
                  "type": str(session.get("type") or "STAGES").lower(), "sleep_date": ended,
                  "log_id": str(session.get("name") or interval.get("startTime"))}
    stages = session.get("stages") if isinstance(session.get("stages"), list) else []
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
    result = split_into_batches(frame, spec, original=_originals(stages))
    result.extend(_sleep_summary(session, interval, ended, page, research_id, attributes))
    return result


def _sleep_summary(session: Mapping[str, Any], interval: Mapping[str, Any], ended: str | None, page: RawPage,
                   research_id: str, attributes: dict[str, Any]) -> Normalized:
    summary = session.get("summary") if isinstance(session.get("summary"), Mapping) else {}
    figures = [(label, summary[key]) for key, label in _SLEEP_SUMMARY.items() if key in summary]
    for stage in summary.get("stagesSummary") or []:
        if isinstance(stage, Mapping) and isinstance(stage.get("type"), str):
            minutes = stage.get("minutes")
            if minutes is None and parse_duration_s(stage.get("duration")) is not None:
                minutes = parse_duration_s(stage.get("duration")) / 60  # type: ignore[operator]
            figures.append((f"stage.{stage['type'].lower()}.minutes", minutes))
    if not figures:
        return Normalized()
    start = _timed(pl.DataFrame({"t": [interval.get("startTime")], "o": [interval.get("startUtcOffset")]},
                                schema={"t": pl.String, "o": pl.String}), "t", "o")
    frame = pl.DataFrame({"idx": range(len(figures)), "label": [f[0] for f in figures],
                          "value": numbers([f[1] for f in figures])}).with_columns(
        ts=pl.lit(start["ts"][0], dtype=pl.Int64), offset=pl.lit(start["offset"][0], dtype=pl.Int64),
        local_date=pl.lit(ended, dtype=pl.String))
    spec = BatchSpec(research_id, Metric.VENDOR_SLEEP, Unit.MIXED, Resolution.EVENT, page, attributes)
    return split_into_batches(frame, spec, original=lambda rows: [dict([figures[i]]) for i in rows])


def _civil_date(value: Any) -> date | None:
    if not isinstance(value, Mapping):
        return None
    try:
        return date(int(as_number(value.get("year")) or 0), int(as_number(value.get("month")) or 0),
                    int(as_number(value.get("day")) or 0))
    except (TypeError, ValueError):
        return None


def _unusable_point(point: Any, field: str, spec: BatchSpec) -> Normalized:
    """A point whose time cannot be read: one reject, so the accounting still holds."""
    frame = pl.DataFrame({"idx": [0], "ts": [None], "offset": [0], "local_date": [""], "value": [None],
                          "time_reason": [Reason.BAD_TIME.value]},
                         schema={"idx": pl.Int64, "ts": pl.Int64, "offset": pl.Int64, "local_date": pl.String,
                                 "value": pl.Float64, "time_reason": pl.String})
    return split_into_batches(frame, spec, original=lambda rows: [point])


def _originals(points: Sequence[Any]) -> Callable[[Sequence[int]], list[Any]]:
    return lambda rows: [points[i] for i in rows]



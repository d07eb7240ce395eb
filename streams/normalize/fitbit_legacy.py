"""Fitbit Web API (legacy) pages and archive files → SampleBatches.

Formats (research/fitbit_allofus.md §2): ``activities-heart-intraday`` (1sec/1min) and
``activities-steps-intraday`` (1min) with their daily figures, the daily activity summary,
sleep v1.2 (stages and classic logs, ``levels.data`` and ``shortData``), and devices.
Intraday ``time`` values are local wall-clock times of the request date; the zone comes from
the page metadata (the participant's profile).
"""

from __future__ import annotations

import hashlib
import hmac
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import polars as pl

from models._validate import req_list, req_mapping
from models.errors import DecodeError, Reason
from models.raw import RawPage
from models.samples import Metric, Resolution, Unit
from streams.normalize.common import (
    daily_figures,
    daily_figures_of_pages,
    load_json,
    local_midnight_s,
    numbers,
    parse_iso_date,
)
from streams.normalize.result import BatchSpec, Normalized, split_into_batches, split_pages
from streams.normalize.timeconv import Zone, local_to_utc, pages_to_utc, zone_of

__all__ = ["INTRADAY_TYPES", "IntradayPage", "intraday_batches", "normalize_fitbit", "read_intraday"]

_SUMMARY_FIELDS = {  # Fitbit daily activity summary field → our label (All of Us activity_summary names)
    "steps": "steps", "caloriesOut": "calories_out", "caloriesBMR": "calories_bmr",
    "activityCalories": "activity_calories", "marginalCalories": "marginal_calories",
    "sedentaryMinutes": "sedentary_minutes", "lightlyActiveMinutes": "lightly_active_minutes",
    "fairlyActiveMinutes": "fairly_active_minutes", "veryActiveMinutes": "very_active_minutes",
    "floors": "floors", "elevation": "elevation", "restingHeartRate": "resting_heart_rate",
}
_SLEEP_FIELDS = {
    "minutesAsleep": "minutes_asleep", "minutesAwake": "minutes_awake", "minutesAfterWakeup": "minutes_after_wakeup",
    "minutesToFallAsleep": "minutes_to_fall_asleep", "timeInBed": "time_in_bed", "efficiency": "efficiency",
}
_LOCAL_DATETIME = "%Y-%m-%dT%H:%M:%S%.f"
_CLOCK_TEXT = pl.Series([f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86400)], dtype=pl.String)
_CLOCK_SECONDS = pl.Series(range(86400), dtype=pl.Int64)
INTRADAY_TYPES = {"activities-heart-intraday": Metric.HEART_RATE, "activities-steps-intraday": Metric.STEPS}

_ZONE_FIELDS = (("minutes", "minutes"), ("min", "min"), ("max", "max"), ("caloriesOut", "calories_out"))


def normalize_fitbit(page: RawPage, research_id: str, *, secret: bytes) -> Normalized:
    """Normalize one Fitbit page; a DecodeError means the whole page is unusable."""
    if page.data_type in INTRADAY_TYPES:
        return intraday_batches([read_intraday(page, research_id)])[0]
    body = load_json(page.body)
    if page.data_type == "activities-summary":
        return _activity_summary(body, page, research_id)
    if page.data_type == "sleep":
        return _sleep(body, page, research_id)
    if page.data_type == "devices":
        return _devices(body, page, research_id, secret)
    raise DecodeError(f"no normalizer for {page.data_type!r}", reason=Reason.UNKNOWN_DATA_TYPE, field="data_type")


# ----------------------------------------------------------------------------- intraday
@dataclass(slots=True)
class IntradayPage:
    """An intraday page read and checked, its columns waiting for the pass shared by many pages."""

    spec: BatchSpec
    day: date
    zone: Zone
    dataset: Sequence[Any]
    times: pl.Series  # String, ``HH:MM:SS`` local wall-clock times of ``day``
    values: pl.Series  # Float64, null where unusable
    figures: list[tuple[str, Any]]  # the vendor's daily figures of the page


def read_intraday(page: RawPage, research_id: str) -> IntradayPage:
    """Decode an intraday page (Python work only); a DecodeError means it is unusable."""
    body = load_json(page.body)
    metric = INTRADAY_TYPES[page.data_type]
    resource = "activities-heart" if metric is Metric.HEART_RATE else "activities-steps"
    section = f"{resource}-intraday"
    intraday = req_mapping(_object(body), section)
    dataset = req_list(intraday, "dataset", f"{section}.")
    day, summary = _day_entry(body, resource, page)
    zone = zone_of(page.timezone, page.utc_offset_ms)
    unit = Unit.BPM if metric is Metric.HEART_RATE else Unit.STEPS
    times, values = _dataset_columns(dataset)
    return IntradayPage(BatchSpec(research_id, metric, unit, _resolution(intraday, page.detail), page), day, zone,
                        dataset, times, values, _intraday_daily_figures(summary, metric))


def intraday_batches(pages: Sequence[IntradayPage]) -> list[Normalized]:
    """Every page's batches and rejects, from one vectorised pass per metric and resolution."""
    results = [Normalized() for _ in pages]
    families: dict[tuple[Metric, Resolution], list[int]] = defaultdict(list)
    for i, page in enumerate(pages):
        families[(page.spec.metric, page.spec.resolution)].append(i)
    for members in families.values():
        chosen = [pages[i] for i in members]
        frame = _intraday_frame(chosen)
        originals = [_entries(p.dataset) for p in chosen]
        for i, result in zip(members, split_pages(frame, [p.spec for p in chosen], originals), strict=True):
            results[i].extend(result)
    with_figures = [i for i, p in enumerate(pages) if p.figures]
    figures = daily_figures_of_pages([(pages[i].figures, pages[i].day, pages[i].zone, _daily_spec(pages[i].spec))
                                      for i in with_figures])
    for i, result in zip(with_figures, figures, strict=True):
        results[i].extend(result)
    return results


def _intraday_frame(pages: Sequence[IntradayPage]) -> pl.DataFrame:
    lengths = np.array([len(p.times) for p in pages], dtype=np.int64)
    page = np.repeat(np.arange(len(pages)), lengths)
    starts = np.cumsum(lengths) - lengths
    midnight = pl.Series([local_midnight_s(p.day) for p in pages], dtype=pl.Int64)
    local_date = pl.Series([p.day.isoformat() for p in pages], dtype=pl.String)
    clock = _clock_seconds(pl.concat([p.times for p in pages]))
    frame = pl.DataFrame({
        "page": page, "idx": np.arange(int(lengths.sum())) - np.repeat(starts, lengths), "clock": clock,
        "value": pl.concat([p.values for p in pages]),
    }).with_columns(naive=pl.lit(midnight).gather(pl.col("page")) + pl.col("clock"))
    frame = pages_to_utc(frame, [p.zone for p in pages], ordered_day=True)
    return frame.select("page", "idx", "ts", "offset", "value", local_date=pl.lit(local_date).gather(pl.col("page")),
                        time_reason=_time_reason(pl.col("clock"), pl.col("ts")))


def _daily_spec(spec: BatchSpec) -> BatchSpec:
    return BatchSpec(spec.research_id, Metric.VENDOR_DAILY, Unit.MIXED, Resolution.DAY, spec.page)


def _entries(dataset: Sequence[Any]) -> Callable[[Sequence[int]], list[Any]]:
    return lambda rows: [dataset[i] for i in rows]


def _dataset_columns(dataset: Sequence[Any]) -> tuple[pl.Series, pl.Series]:
    """``time`` and ``value`` columns of a dataset: list comprehensions for well-formed pages."""
    try:
        times = pl.Series("time", [item["time"] for item in dataset], dtype=pl.String, strict=True)
        return times, numbers([item["value"] for item in dataset])
    except (TypeError, KeyError, IndexError, pl.exceptions.PolarsError):
        pass
    try:
        frame = pl.DataFrame(dataset, infer_schema_length=None)
        if frame.schema.get("time") == pl.String and "value" in frame.columns:
            return frame["time"], numbers(frame["value"].to_list()) if frame["value"].dtype == pl.String \
                else frame["value"].cast(pl.Float64, strict=False)
    except (TypeError, ValueError, pl.exceptions.PolarsError):
        pass
    # A malformed page: classify entry by entry (not the hot path).
    entries = [item if isinstance(item, Mapping) else {} for item in dataset]
    times = [t if isinstance(t := item.get("time"), str) else None for item in entries]
    return pl.Series("time", times, dtype=pl.String), numbers([item.get("value") for item in entries])


def _clock_seconds(times: pl.Series) -> pl.Series:
    """Seconds after midnight of ``HH:MM:SS`` strings; null when not a time of day.

    A lookup of the 86,400 canonical spellings costs a third of parsing; anything else (rare)
    is parsed, so the result is exactly that of parsing every string.
    """
    seconds = times.replace_strict(_CLOCK_TEXT, _CLOCK_SECONDS, default=None, return_dtype=pl.Int64)
    if (seconds.is_null() & times.is_not_null()).any():
        parsed = times.str.to_time("%H:%M:%S", strict=False).cast(pl.Int64) // 1_000_000_000
        seconds = seconds.fill_null(parsed)
    return seconds


def _time_reason(clock: pl.Expr, utc: pl.Expr) -> pl.Expr:
    return (pl.when(clock.is_null()).then(pl.lit(Reason.BAD_TIME.value))
            .when(utc.is_null()).then(pl.lit(Reason.NONEXISTENT_LOCAL_TIME.value))
            .otherwise(pl.lit(None, dtype=pl.String)))


def _resolution(intraday: Mapping[str, Any], detail: str | None) -> Resolution:
    kind = intraday.get("datasetType")
    if kind == "second" or detail == "1sec":
        return Resolution.SECOND
    if kind in ("minute", None) and detail in ("1min", None):
        return Resolution.MINUTE
    return Resolution.SEGMENT if kind not in ("minute", "second") else Resolution.MINUTE


def _day_entry(body: Any, resource: str, page: RawPage) -> tuple[date, Mapping[str, Any]]:
    """The page's date (``<resource>[0].dateTime``, else the requested date) and its daily entry."""
    entries = body.get(resource) if isinstance(body, Mapping) else None
    entry = entries[0] if isinstance(entries, list) and entries and isinstance(entries[0], Mapping) else {}
    if entry.get("dateTime") is not None:
        return parse_iso_date(entry["dateTime"], f"{resource}[0].dateTime"), entry
    if page.date is not None:
        return date.fromisoformat(page.date), entry
    raise DecodeError("no date: neither the page metadata nor the body has one", reason=Reason.MISSING_FIELD,
                      field=f"{resource}[0].dateTime")


def _intraday_daily_figures(entry: Mapping[str, Any], metric: Metric) -> list[tuple[str, Any]]:
    if "value" not in entry:
        return []
    if metric is Metric.STEPS:
        return [("steps", entry["value"])]
    value = entry["value"] if isinstance(entry["value"], Mapping) else {}
    figures = [("resting_heart_rate", value["restingHeartRate"])] if "restingHeartRate" in value else []
    return figures + _zone_figures(value.get("heartRateZones"))


def _zone_figures(zones: Any) -> list[tuple[str, Any]]:
    figures: list[tuple[str, Any]] = []
    for zone in zones if isinstance(zones, list) else []:
        if isinstance(zone, Mapping) and isinstance(zone.get("name"), str):
            for source, label in _ZONE_FIELDS:
                if source in zone:
                    figures.append((f"hr_zone.{zone['name']}.{label}", zone[source]))
    return figures


# ----------------------------------------------------------------------------- daily summary
def _activity_summary(body: Any, page: RawPage, research_id: str) -> Normalized:
    summary = req_mapping(_object(body), "summary")
    if page.date is None:
        raise DecodeError("the activity summary page has no requested date", reason=Reason.MISSING_FIELD, field="date")
    figures = [(label, summary[key]) for key, label in _SUMMARY_FIELDS.items() if key in summary]
    distances = summary.get("distances")
    if isinstance(distances, list):
        total = [d.get("distance") for d in distances if isinstance(d, Mapping) and d.get("activity") == "total"]
        figures += [("distance", total[0])] if total else []
    figures += _zone_figures(summary.get("heartRateZones"))
    zone = zone_of(page.timezone, page.utc_offset_ms)
    spec = BatchSpec(research_id, Metric.VENDOR_DAILY, Unit.MIXED, Resolution.DAY, page)
    return daily_figures(figures, date.fromisoformat(page.date), zone, spec)


# ----------------------------------------------------------------------------- sleep v1.2
def _sleep(body: Any, page: RawPage, research_id: str) -> Normalized:
    logs = req_list(_object(body), "sleep")
    zone = zone_of(page.timezone, page.utc_offset_ms)
    result = Normalized()
    for i, log in enumerate(logs):  # per sleep log (one or two a day), not per sample
        result.extend(_sleep_log(log, f"sleep[{i}].", page, research_id, zone))
    return result


def _sleep_log(log: Any, path: str, page: RawPage, research_id: str, zone: Zone) -> Normalized:
    if not isinstance(log, Mapping):
        raise DecodeError("expected an object", reason=Reason.BAD_FIELD, field=path.rstrip("."))
    ended = parse_iso_date(log.get("dateOfSleep"), f"{path}dateOfSleep")
    levels = req_mapping(log, "levels", path)
    data = levels.get("data") or []
    short = levels.get("shortData") or []
    if not isinstance(data, list) or not isinstance(short, list):
        raise DecodeError("expected lists", reason=Reason.BAD_FIELD, field=f"{path}levels.data")
    entries = [*data, *short]
    items = [e if isinstance(e, Mapping) else {} for e in entries]
    labels = [str(e.get("level")) for e in items[: len(data)]] + [f"short:{e.get('level')}" for e in items[len(data):]]
    attributes = {"log_id": str(log.get("logId")), "is_main_sleep": bool(log.get("isMainSleep")),
                  "type": str(log.get("type") or "stages"), "sleep_date": ended.isoformat()}
    starts = pl.Series("start", [e.get("dateTime") if isinstance(e.get("dateTime"), str) else None for e in items],
                       dtype=pl.String).str.strptime(pl.Datetime("us"), _LOCAL_DATETIME, strict=False)
    seconds = numbers([e.get("seconds") for e in items])
    frame = pl.DataFrame({"idx": range(len(entries)), "start": starts, "value": seconds, "label": labels})
    utc, offset = local_to_utc(pl.col("start"), zone, ordered_day=False, rows=frame.height)
    frame = frame.with_columns(ts=utc, offset=offset, local_date=pl.lit(ended.isoformat()),
                               duration=pl.col("value").fill_nan(None).cast(pl.Int64, strict=False),
                               time_reason=_time_reason(pl.col("start"), utc))
    spec = BatchSpec(research_id, Metric.SLEEP_STAGE, Unit.SECONDS, Resolution.SEGMENT, page, attributes)
    result = split_into_batches(frame.drop("start"), spec, original=lambda rows: [entries[i] for i in rows])
    result.extend(_sleep_summary(log, levels, ended, zone, page, research_id, attributes))
    return result


def _sleep_summary(log: Mapping[str, Any], levels: Mapping[str, Any], ended: date, zone: Zone, page: RawPage,
                   research_id: str, attributes: dict[str, Any]) -> Normalized:
    figures = [(label, log[key]) for key, label in _SLEEP_FIELDS.items() if key in log]
    per_level = levels.get("summary") if isinstance(levels.get("summary"), Mapping) else {}
    figures += [(f"stage.{name}.minutes", v.get("minutes")) for name, v in per_level.items() if isinstance(v, Mapping)]
    if not figures:
        return Normalized()
    start = pl.Series("start", [log.get("startTime")], dtype=pl.String).str.strptime(
        pl.Datetime("us"), _LOCAL_DATETIME, strict=False)
    utc, offset = local_to_utc(pl.col("start"), zone, ordered_day=False)
    base = pl.DataFrame({"start": start}).select(ts=utc, offset=offset)
    frame = pl.DataFrame({
        "idx": range(len(figures)), "label": [f[0] for f in figures], "value": numbers([f[1] for f in figures]),
    }).with_columns(ts=pl.lit(base["ts"][0], dtype=pl.Int64), offset=pl.lit(base["offset"][0], dtype=pl.Int64),
                    local_date=pl.lit(ended.isoformat()))
    spec = BatchSpec(research_id, Metric.VENDOR_SLEEP, Unit.MIXED, Resolution.EVENT, page, attributes)
    return split_into_batches(frame, spec, original=lambda rows: [dict([figures[i]]) for i in rows])


# ----------------------------------------------------------------------------- devices
def _devices(body: Any, page: RawPage, research_id: str, secret: bytes) -> Normalized:
    devices = body if isinstance(body, list) else req_list(_object(body), "devices")
    zone = zone_of(page.timezone, page.utc_offset_ms)
    result = Normalized()
    for i, device in enumerate(devices):  # a handful per participant
        item = device if isinstance(device, Mapping) else {}
        synced = pl.Series("start", [item.get("lastSyncTime")], dtype=pl.String).str.strptime(
            pl.Datetime("us"), _LOCAL_DATETIME, strict=False)
        utc, offset = local_to_utc(pl.col("start"), zone, ordered_day=False)
        frame = pl.DataFrame({"idx": [i], "start": synced, "value": numbers([item.get("batteryLevel")])})
        frame = frame.with_columns(ts=utc, offset=offset, time_reason=_time_reason(pl.col("start"), utc),
                                   local_date=pl.col("start").dt.date().cast(pl.String).fill_null(page.date or ""))
        attributes = {
            # Device serials identify people as well as names do: keep a keyed pseudonym only.
            "device_id": _device_pseudonym(secret, research_id, str(item.get("id"))),
            "device_version": str(item.get("deviceVersion")), "battery": str(item.get("battery")),
            "device_type": str(item.get("type")),
        }
        spec = BatchSpec(research_id, Metric.DEVICE, Unit.PERCENT, Resolution.EVENT, page, attributes)
        result.extend(split_into_batches(frame.drop("start"), spec, original=lambda rows: [devices[j] for j in rows]))
    return result


def _device_pseudonym(secret: bytes, research_id: str, device_id: str) -> str:
    digest = hmac.new(secret, f"device\x00{research_id}\x00{device_id}".encode(), hashlib.sha256).hexdigest()
    return "D" + digest[:16]


def _object(body: Any) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise DecodeError(f"expected a JSON object, got {type(body).__name__}", reason=Reason.BAD_FIELD, field="$")
    return body

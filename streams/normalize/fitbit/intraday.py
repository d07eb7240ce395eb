"""Fitbit Web API intraday pages → SampleBatches: the batched path that carries most of the volume.

Formats (docs/vendors.md, "Fitbit Web API"): ``activities-heart-intraday`` (1sec/1min) and
``activities-steps-intraday`` (1min), each with the day's figures in ``activities-<kind>[0]``.
Intraday ``time`` values are local wall-clock times of the request date; the zone comes from
the page metadata (the participant's profile). Each page is read in Python (``read_intraday``);
then every page of one call is converted, validated and cut in one vectorised pass
(``intraday_batches``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import polars as pl

from models import labels
from models._validate import req_list, req_mapping
from models.errors import DecodeError, Reason
from models.providers import Provider
from models.raw import RawPage
from models.samples import Metric, Resolution, Unit
from streams.normalize.base import Normalized, Normalizer
from streams.normalize.batching import BatchSpec, cut_batches, originals_of
from streams.normalize.figures import Figures, daily_figures_of_pages
from streams.normalize.fitbit.activity import zone_figures
from streams.normalize.parsing import json_object, load_json, numbers, parse_iso_date
from streams.normalize.timeconv import Zone, local_midnight_s, pages_to_utc, time_reason, zone_of

__all__ = ["INTRADAY_TYPES", "FitbitIntraday", "IntradayPage", "intraday_batches", "read_intraday"]

_CLOCK_TEXT = pl.Series([f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86400)], dtype=pl.String)
_CLOCK_SECONDS = pl.Series(range(86400), dtype=pl.Int64)
INTRADAY_TYPES = {"activities-heart-intraday": Metric.HEART_RATE, "activities-steps-intraday": Metric.STEPS}


@dataclass(slots=True)
class IntradayPage:
    """An intraday page read and checked, its columns waiting for the pass shared by many pages."""

    spec: BatchSpec
    day: date
    zone: Zone
    dataset: Sequence[Any]
    times: pl.Series  # String, ``HH:MM:SS`` local wall-clock times of ``day``
    values: pl.Series  # Float64, null where unusable
    figures: Figures  # the vendor's daily figures of the page


class FitbitIntraday(Normalizer[IntradayPage]):
    """Heart-rate and steps intraday pages, many pages per vectorised pass.

    ``prepare`` is ``read_intraday``; ``finish`` is ``intraday_batches``.
    """

    provider = Provider.FITBIT
    data_types = tuple(INTRADAY_TYPES)

    def prepare(self, page: RawPage, research_id: str, *, secret: bytes) -> IntradayPage:
        del secret  # no identifiers to pseudonymize in samples
        return read_intraday(page, research_id)

    def finish(self, prepared: Sequence[IntradayPage]) -> list[Normalized]:
        return intraday_batches(prepared)


def read_intraday(page: RawPage, research_id: str) -> IntradayPage:
    """Decode an intraday page (Python work only); a DecodeError means it is unusable."""
    body = load_json(page.body)
    metric = INTRADAY_TYPES[page.data_type]
    resource = "activities-heart" if metric is Metric.HEART_RATE else "activities-steps"
    section = f"{resource}-intraday"
    intraday = req_mapping(json_object(body), section)
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
        originals = [originals_of(p.dataset) for p in chosen]
        for i, result in zip(members, cut_batches(frame, [p.spec for p in chosen], originals), strict=True):
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
                        time_reason=time_reason(pl.col("clock"), pl.col("ts")))


def _daily_spec(spec: BatchSpec) -> BatchSpec:
    return BatchSpec(spec.research_id, Metric.VENDOR_DAILY, Unit.MIXED, Resolution.DAY, spec.page)


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
    texts = [t if isinstance(t := item.get("time"), str) else None for item in entries]
    return pl.Series("time", texts, dtype=pl.String), numbers([item.get("value") for item in entries])


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


def _resolution(intraday: Mapping[str, Any], detail: str | None) -> Resolution:
    kind = intraday.get("datasetType")
    if kind == "second" or detail == "1sec":
        return Resolution.SECOND
    if kind in ("minute", None) and detail in ("1min", None):
        return Resolution.MINUTE
    return Resolution.SEGMENT if kind not in ("minute", "second") else Resolution.MINUTE


def _day_entry(body: Any, resource: str, page: RawPage) -> tuple[date, Mapping[str, Any]]:
    """The page's date (``<resource>[0].dateTime``, else the requested date) and its daily entry.

    A ``dateTime`` of ``"today"`` (pages fetched as ``.../date/today/...``, as some exports hold
    them) is the page's own date: the date of its request or archive file.
    """
    entries = body.get(resource) if isinstance(body, Mapping) else None
    entry = entries[0] if isinstance(entries, list) and entries and isinstance(entries[0], Mapping) else {}
    stated = entry.get("dateTime")
    if stated is not None and stated != "today":
        return parse_iso_date(stated, f"{resource}[0].dateTime"), entry
    if page.date is not None:
        return date.fromisoformat(page.date), entry
    raise DecodeError("no date: neither the page metadata nor the body has one", reason=Reason.MISSING_FIELD,
                      field=f"{resource}[0].dateTime")


def _intraday_daily_figures(entry: Mapping[str, Any], metric: Metric) -> Figures:
    if "value" not in entry:
        return []
    if metric is Metric.STEPS:
        return [(labels.STEPS, entry["value"])]
    value = entry["value"] if isinstance(entry["value"], Mapping) else {}
    figures = [(labels.RESTING_HEART_RATE, value["restingHeartRate"])] if "restingHeartRate" in value else []
    return figures + zone_figures(value.get("heartRateZones"))

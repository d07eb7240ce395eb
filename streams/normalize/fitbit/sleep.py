"""Fitbit Web API sleep v1.2 pages → stage segments and each log's own summary figures.

Format (docs/vendors.md, "Fitbit Web API"): ``sleep`` is a list of logs (one or two a day); a
log has ``levels.data`` (stages logs: wake/light/deep/rem; classic: asleep/restless/awake),
``levels.shortData`` (short wakes inside long segments) and ``levels.summary``. Times are local
wall-clock datetimes; a log is filed under ``dateOfSleep``, the date it ended.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

import polars as pl

from models import labels
from models._validate import req_list, req_mapping
from models.errors import DecodeError, Reason
from models.providers import Provider
from models.raw import RawPage
from models.samples import Attribute, Metric, Resolution, Unit
from streams.normalize.base import Normalized, PerPageNormalizer
from streams.normalize.batching import BatchSpec, cut_page, originals_of
from streams.normalize.figures import figures_at
from streams.normalize.parsing import as_mapping, json_object, load_json, local_datetimes, numbers, parse_iso_date
from streams.normalize.timeconv import Zone, local_to_utc, time_reason, zone_of

__all__ = ["FitbitSleep"]

_SLEEP_FIELDS = {  # Fitbit sleep log field → our label
    "minutesAsleep": labels.MINUTES_ASLEEP, "minutesAwake": labels.MINUTES_AWAKE,
    "minutesAfterWakeup": labels.MINUTES_AFTER_WAKEUP, "minutesToFallAsleep": labels.MINUTES_TO_FALL_ASLEEP,
    "timeInBed": labels.TIME_IN_BED, "efficiency": labels.EFFICIENCY,
}


class FitbitSleep(PerPageNormalizer):
    """Sleep logs: a ``SLEEP_STAGE`` batch of segments and a ``VENDOR_SLEEP`` batch per log."""

    provider = Provider.FITBIT
    data_types = ("sleep",)

    def normalize_page(self, page: RawPage, research_id: str, *, secret: bytes) -> Normalized:
        del secret  # no identifiers to pseudonymize
        logs = req_list(json_object(load_json(page.body)), "sleep")
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
    stage_labels = ([_level(e.get("level")) for e in items[: len(data)]]
                    + [labels.short_level(_level(e.get("level"))) for e in items[len(data):]])
    attributes: dict[str, Attribute] = {"log_id": str(log.get("logId")), "is_main_sleep": bool(log.get("isMainSleep")),
                  "type": str(log.get("type") or "stages"), "sleep_date": ended.isoformat()}
    starts = local_datetimes([e.get("dateTime") for e in items])
    seconds = numbers([e.get("seconds") for e in items])
    frame = pl.DataFrame({"idx": range(len(entries)), "start": starts, "value": seconds, "label": stage_labels})
    utc, offset = local_to_utc(pl.col("start"), zone, ordered_day=False, rows=frame.height)
    frame = frame.with_columns(ts=utc, offset=offset, local_date=pl.lit(ended.isoformat()),
                               duration=pl.col("value").fill_nan(None).cast(pl.Int64, strict=False),
                               time_reason=time_reason(pl.col("start"), utc))
    spec = BatchSpec(research_id, Metric.SLEEP_STAGE, Unit.SECONDS, Resolution.SEGMENT, page, attributes)
    result = cut_page(frame.drop("start"), spec, original=originals_of(entries))
    result.extend(_sleep_summary(log, levels, ended, zone, page, research_id, attributes))
    return result


def _level(level: Any) -> str:
    """A segment's level as Fitbit spells it; ``unknown`` (a level All of Us allows) when it has none."""
    return level if isinstance(level, str) and level else "unknown"


def _sleep_summary(log: Mapping[str, Any], levels: Mapping[str, Any], ended: date, zone: Zone, page: RawPage,
                   research_id: str, attributes: dict[str, Attribute]) -> Normalized:
    """The log's own figures, at the log's start."""
    figures = [(label, log[key]) for key, label in _SLEEP_FIELDS.items() if key in log]
    per_level = as_mapping(levels.get("summary"))
    figures += [(labels.stage_minutes(name), v.get("minutes")) for name, v in per_level.items()
                if isinstance(v, Mapping)]
    if not figures:
        return Normalized()
    utc, offset = local_to_utc(pl.col("start"), zone, ordered_day=False)
    start = pl.DataFrame({"start": local_datetimes([log.get("startTime")])}).select(ts=utc, offset=offset)
    spec = BatchSpec(research_id, Metric.VENDOR_SLEEP, Unit.MIXED, Resolution.EVENT, page, attributes)
    return figures_at(figures, ts=start["ts"][0], offset=start["offset"][0], local_date=ended.isoformat(), spec=spec)

"""Google Health API v4 ``dataPoints`` list pages → SampleBatches.

Shapes (v4 REST reference, ``users.dataTypes.dataPoints``): int64 values arrive as strings (or
as numbers; both are read), offsets and durations as protobuf Duration strings (``"-18000s"``,
``"920.400s"``), physical times as RFC 3339 UTC with any number of fractional digits (none,
``.5``, ``.123456789``; kept to the second). ``steps`` points carry an ``interval``;
``heartRate`` points a ``sampleTime``; ``dailyRestingHeartRate`` a civil ``date``; ``sleep`` an
interval, a summary and ``stages``.

Time: every instant is its physical time (``startTime``, ``physicalTime``) plus its own UTC
offset (``startUtcOffset``, ``utcOffset``), and the local date of a sample is their sum
(docs/vendors.md, "Google Health API"). proto3 JSON omits a zero Duration, so a missing offset
means UTC. The civil fields beside them (``civilStartTime``, ``civilTime``: ``{date{year, month,
day}, time{hours, minutes, seconds, nanos}}``) are output-only restatements of the same local
time and are not read. Points come newest first (the list is ordered by start time,
descending); batches are in time order whatever the page order. A page without ``dataPoints``
(``{}``, or only a ``nextPageToken``) is an empty page, not an error.

Every data type is one list page of ``dataPoints``; one ``GoogleHealthNormalizer`` per data type
reads the list and hands the points to its reader.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import polars as pl

from models import labels
from models._validate import req_list
from models.errors import Reason
from models.providers import Provider
from models.raw import RawPage
from models.samples import Attribute, Metric, Resolution, Unit
from streams.normalize.base import Normalized, Normalizer, PerPageNormalizer
from streams.normalize.batching import BatchSpec, cut_page, originals_of
from streams.normalize.figures import daily_figures, figures_at
from streams.normalize.parsing import as_list, as_mapping, as_number, json_object, load_json, parse_duration_s
from streams.normalize.timeconv import Zone, zone_of

__all__ = ["NORMALIZERS", "GoogleHealthNormalizer", "page_zone"]

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


def page_zone(page: RawPage) -> Zone:
    """The zone of what a Google page states without an offset (a daily point's date, a device's
    last sync): the page's IANA zone, else its fixed offset, else UTC (the API's own default).

    Raises DecodeError when the page names a zone that does not exist and no offset.
    """
    if page.timezone is None and page.utc_offset_ms is None:
        return Zone(None, 0)
    return zone_of(page.timezone, page.utc_offset_ms)


def _resting(points: Sequence[Any], page: RawPage, research_id: str) -> Normalized:
    zone = page_zone(page)
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


@dataclass(frozen=True, slots=True, eq=False)  # hashed by identity: its frames are not hashable
class _Session:
    """One sleep session whose end is readable, with what choosing the main sleep needs."""

    point: Mapping[str, Any]
    sleep: Mapping[str, Any]
    interval: Mapping[str, Any]
    start: pl.DataFrame  # ``_instant`` of the interval's start (``ts`` null when unreadable)
    end: pl.DataFrame  # ``_instant`` of the interval's end (its local date is the session's date)

    @property
    def ended(self) -> str:
        return str(self.end["local_date"][0])

    @property
    def metadata(self) -> Mapping[str, Any]:
        return as_mapping(self.sleep.get("metadata"))

    @property
    def kind(self) -> str:
        """``STAGES`` or ``CLASSIC`` as the vendor spells it (``STAGES`` when absent)."""
        kind = self.sleep.get("type")
        return kind if isinstance(kind, str) and kind else "STAGES"

    @property
    def minutes(self) -> float:
        """The session's length: ``summary.minutesInSleepPeriod``, else the interval's (0 if neither)."""
        stated = as_number(as_mapping(self.sleep.get("summary")).get("minutesInSleepPeriod"))
        if stated is not None and math.isfinite(stated):
            return stated
        start, end = self.start["ts"][0], self.end["ts"][0]
        return float(end - start) / 60 if start is not None and end is not None else 0.0


def _sleep(points: Sequence[Any], page: RawPage, research_id: str) -> Normalized:
    sessions = [_read_session(point) for point in points]  # one point per sleep session
    main = _main_sleeps([s for s in sessions if s is not None])
    result = Normalized()
    for i, (point, session) in enumerate(zip(points, sessions, strict=True)):
        if session is None:
            # Not a session, or one that cannot be filed under the date it ended: one reject.
            spec = BatchSpec(research_id, Metric.SLEEP_STAGE, Unit.SECONDS, Resolution.SEGMENT, page)
            result.extend(_unusable_point(point, f"dataPoints[{i}].sleep", spec))
        else:
            result.extend(_sleep_session(session, session in main, page, research_id))
    return result


def _read_session(point: Any) -> _Session | None:
    """The point's session, or None when it is not one or its end cannot be read."""
    sleep = point.get("sleep") if isinstance(point, Mapping) else None
    if not isinstance(sleep, Mapping):
        return None
    interval = as_mapping(sleep.get("interval"))
    end = _instant(interval.get("endTime"), interval.get("endUtcOffset"))
    if end["local_date"][0] is None:
        return None
    return _Session(point, sleep, interval, start=_instant(interval.get("startTime"), interval.get("startUtcOffset")),
                    end=end)


def _main_sleeps(sessions: Sequence[_Session]) -> set[_Session]:
    """The sessions that are the main sleep of the date they ended.

    The v4 reference no longer has ``metadata.mainSleep``, so the main sleep is decided by a rule
    (docs/vendors.md, "Google Health API"): of the sessions ending on one local date that are
    not naps (``metadata.nap`` not true), the longest (``summary.minutesInSleepPeriod``, else the
    interval's length; a tie goes to the one that started first). A date on which a session
    still carries ``mainSleep`` keeps the vendor's flags. Sleep is listed by civil end date, so
    the sessions of one date are on one page and the rule can be applied page by page.
    """
    by_date: dict[str, list[_Session]] = defaultdict(list)
    for session in sessions:
        by_date[session.ended].append(session)
    main: set[_Session] = set()
    for same_date in by_date.values():
        if any(isinstance(s.metadata.get("mainSleep"), bool) for s in same_date):
            main.update(s for s in same_date if s.metadata.get("mainSleep") is True)
            continue
        candidates = [s for s in same_date if s.metadata.get("nap") is not True]
        if candidates:
            main.add(max(candidates, key=lambda s: (s.minutes, -_or_inf(s.start["ts"][0]))))
    return main


def _or_inf(value: int | None) -> float:
    return math.inf if value is None else float(value)


def _sleep_session(found: _Session, is_main: bool, page: RawPage, research_id: str) -> Normalized:
    attributes: dict[str, Attribute] = {
        "is_main_sleep": is_main, "nap": found.metadata.get("nap") is True, "type": found.kind.lower(),
        # ``processed: false``: stages are still being computed, an update follows (absent: done).
        "processed": found.metadata.get("processed") is not False,
        "sleep_date": found.ended, "log_id": _log_id(found)}
    stages = as_list(found.sleep.get("stages"))
    frame = _columns(stages, {"type": ("type",), "start": ("startTime",), "end": ("endTime",),
                              "duration": ("duration",), "offset_s": ("startUtcOffset",)})
    # A stage without an offset of its own lies in its session: it takes the session's.
    session_offset = next((o for o in (found.interval.get("startUtcOffset"), found.interval.get("endUtcOffset"))
                           if isinstance(o, str)), None)
    frame = frame.with_columns(pl.col("offset_s").fill_null(pl.lit(session_offset, dtype=pl.String)))
    frame = _timed(frame, "start", "offset_s")
    frame = frame.with_columns(
        idx=pl.int_range(pl.len()), label=pl.Series([_level(found.kind, t) for t in frame["type"]], dtype=pl.String),
        value=pl.coalesce(
            pl.col("end").str.to_datetime(time_zone="UTC", strict=False, time_unit="us").dt.epoch("s") - pl.col("ts"),
            pl.col("duration").str.strip_suffix("s").cast(pl.Float64, strict=False),
        ).cast(pl.Float64),
        local_date=pl.lit(found.ended, dtype=pl.String),
    ).with_columns(duration=pl.col("value").round().cast(pl.Int64, strict=False))
    frame = frame.select("idx", "ts", "offset", "local_date", "value", "label", "duration")
    spec = BatchSpec(research_id, Metric.SLEEP_STAGE, Unit.SECONDS, Resolution.SEGMENT, page, attributes)
    result = cut_page(frame, spec, original=originals_of(stages))
    result.extend(_sleep_summary(found, page, research_id, attributes))
    return result


def _level(kind: str, stage_type: str | None) -> str:
    """The level label of a stage (``models/labels.py``); a stage without a type is ``unknown``,
    a level the All of Us ``sleep_level`` table allows."""
    return labels.google_sleep_level(kind, stage_type) if stage_type else "unknown"


def _log_id(found: _Session) -> str:
    """The session's id: the last part of the data point's ``name`` (``.../dataPoints/{id}``),
    else its start time as the vendor wrote it."""
    name = found.point.get("name")
    if isinstance(name, str) and name.rpartition("/")[2]:
        return name.rpartition("/")[2]
    return str(found.interval.get("startTime"))


def _sleep_summary(found: _Session, page: RawPage, research_id: str, attributes: dict[str, Attribute]) -> Normalized:
    """The session's own figures, at the session's start."""
    summary = as_mapping(found.sleep.get("summary"))
    figures = [(label, summary[key]) for key, label in _SLEEP_SUMMARY.items() if key in summary]
    for stage in as_list(summary.get("stagesSummary")):
        if isinstance(stage, Mapping) and isinstance(stage.get("type"), str) and stage["type"]:
            minutes = stage.get("minutes")
            if minutes is None and (seconds := parse_duration_s(stage.get("duration"))) is not None:
                minutes = seconds / 60
            figures.append((labels.stage_minutes(_level(found.kind, stage["type"])), minutes))
    if not figures:
        return Normalized()
    spec = BatchSpec(research_id, Metric.VENDOR_SLEEP, Unit.MIXED, Resolution.EVENT, page, attributes)
    return figures_at(figures, ts=found.start["ts"][0], offset=found.start["offset"][0], local_date=found.ended,
                      spec=spec)


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

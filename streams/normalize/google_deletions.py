"""Google Health DELETE notifications → deletion batches: which samples the vendor withdrew.

A participant can delete data at Google (or Google withdraws it); the API then sends a DELETE
notification naming a data type and its intervals, with no values. The gateway publishes it
on ``raw.google_health`` as a ``deletions`` page whose body is, exactly::

    {"operation": "DELETE", "dataType": "steps",
     "intervals": [{"physicalTimeInterval": {"startTime": "2026-11-02T10:00:00Z", "endTime": "…Z"},
                    "civilIso8601TimeInterval": {"startTime": "2026-11-02T05:00:00", "endTime": "…"}}]}

(each part present only when the notification had it; never the user id). Each interval becomes
one ``SampleBatch`` with no samples and ``deleted=[[start, end)]`` per metric the data type
feeds and per local date the interval can touch. The daily agent removes the matching samples
of those days (a day without any is left alone), so "can touch" may be generous:

- with a physical (UTC) interval, the local dates of ``[start - 14 h, end + 14 h)``, every date
  some UTC offset puts it on; the bounds are UTC (``attributes["clock"] = "utc"``);
- with only a civil interval (an older notification shape), its own civil dates; the bounds
  are local wall-clock seconds (``"clock": "local"``), compared with each sample's time plus
  its own offset.

A daily type (``daily-resting-heart-rate``) withdraws its one figure of each local date the
interval names (``"clock": "day"``, ``"label"``), whatever its time. Data types we do not read
(``distance``, ``weight``, …) delete nothing here.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from models import labels
from models.errors import DecodeError, Reason
from models.providers import Provider
from models.raw import RawPage
from models.samples import Attribute, Metric, Resolution, SampleBatch, Unit
from streams.normalize.base import Normalized, PerPageNormalizer
from streams.normalize.parsing import as_list, as_mapping, json_object, load_json

__all__ = ["DAILY_LABELS", "DELETED_METRICS", "GoogleDeletions"]

#: The metrics a Google data type's samples become (``google_health.py``), so a deletion of the
#: type withdraws exactly these.
DELETED_METRICS: dict[str, tuple[Metric, ...]] = {
    "steps": (Metric.STEPS,),
    "heart-rate": (Metric.HEART_RATE,),
    "sleep": (Metric.SLEEP_STAGE, Metric.VENDOR_SLEEP),
    "daily-resting-heart-rate": (Metric.VENDOR_DAILY,),
}
#: Daily types: one figure (label) per local date, withdrawn by date, not by time (its time is the
#: local midnight of a zone we may not know), and only that figure: the day's other vendor
#: figures (a Fitbit activity summary before a move to Google) stay.
DAILY_LABELS: dict[str, str] = {"daily-resting-heart-rate": labels.RESTING_HEART_RATE}
_UNITS = {Metric.STEPS: (Unit.STEPS, Resolution.MINUTE), Metric.HEART_RATE: (Unit.BPM, Resolution.SECOND),
          Metric.SLEEP_STAGE: (Unit.SECONDS, Resolution.SEGMENT), Metric.VENDOR_SLEEP: (Unit.MIXED, Resolution.EVENT),
          Metric.VENDOR_DAILY: (Unit.MIXED, Resolution.DAY)}
_WIDEST_OFFSET = timedelta(hours=14)  # UTC+14 (Kiribati) and UTC-12: every local date a UTC instant has


class GoogleDeletions(PerPageNormalizer):
    """A ``deletions`` page (one DELETE notification) → deletion batches."""

    provider = Provider.GOOGLE_HEALTH
    data_types = ("deletions",)

    def normalize_page(self, page: RawPage, research_id: str, *, secret: bytes) -> Normalized:
        del secret  # nothing here identifies anyone
        body = json_object(load_json(page.body))
        if body.get("operation") != "DELETE" or not isinstance(body.get("dataType"), str):
            raise DecodeError("a deletions page names operation DELETE and a dataType", reason=Reason.BAD_FIELD,
                              field="operation")
        metrics = DELETED_METRICS.get(body["dataType"], ())
        result = Normalized()
        for i, interval in enumerate(as_list(body.get("intervals"))):
            bounds = _bounds(as_mapping(interval))
            if bounds is None:
                raise DecodeError("an interval has neither a physical nor a civil start and end",
                                  reason=Reason.BAD_TIME, field=f"intervals[{i}]")
            clock, start, end, days = bounds
            attributes: dict[str, Attribute] = {"clock": clock}
            if body["dataType"] in DAILY_LABELS:
                attributes, days = {"clock": "day", "label": DAILY_LABELS[body["dataType"]]}, _daily_dates(interval)
            for metric in metrics:
                unit, resolution = _UNITS[metric]
                result.batches += [SampleBatch(
                    research_id=research_id, metric=metric, unit=unit, resolution=resolution,
                    source=Provider.GOOGLE_HEALTH, utc_offset_s=0, local_date=day.isoformat(), timestamps=[],
                    values=[], fetched_at=page.fetched_at, request_id=page.request_id,
                    attributes=attributes, deleted=[[start, end]]) for day in days]
        return result


def _bounds(interval: Mapping[str, Any]) -> tuple[str, int, int, list[date]] | None:
    """(clock, start, end, candidate local dates) of one interval, physical preferred."""
    physical = _pair(as_mapping(interval.get("physicalTimeInterval")), utc=True)
    if physical is not None:
        start, end = physical
        return "utc", _epoch(start), _epoch(end), _dates(start - _WIDEST_OFFSET, end + _WIDEST_OFFSET)
    civil = _pair(as_mapping(interval.get("civilIso8601TimeInterval")), utc=False)
    if civil is not None:
        start, end = civil
        return "local", _epoch(start), _epoch(end), _dates(start, end)
    return None


def _daily_dates(interval: Any) -> list[date]:
    """The local dates a daily type's interval names: its civil dates, else the dates of the
    physical interval less 12 h at each end (a local day is 24 h at an offset within ±12 h of
    UTC, so its middle falls on its own date in UTC)."""
    civil = _pair(as_mapping(as_mapping(interval).get("civilIso8601TimeInterval")), utc=False)
    if civil is not None:
        return _dates(*civil)
    physical = _pair(as_mapping(as_mapping(interval).get("physicalTimeInterval")), utc=True)
    assert physical is not None  # _bounds found one of the two
    start, end = physical
    middle = start + (end - start) / 2
    inner = (start + timedelta(hours=12), end - timedelta(hours=12))
    return _dates(*inner) if inner[0] < inner[1] else [middle.date()]


def _pair(times: Mapping[str, Any], *, utc: bool) -> tuple[datetime, datetime] | None:
    try:
        start, end = (datetime.fromisoformat(str(times[k]).replace("Z", "+00:00")) for k in ("startTime", "endTime"))
    except (KeyError, ValueError):
        return None
    # civil times are naive and read as if UTC: local wall-clock seconds, compared with ts + offset
    start, end = (t.astimezone(UTC) if utc and t.tzinfo else t.replace(tzinfo=UTC) for t in (start, end))
    return (start, end) if start <= end else None


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _dates(start: datetime, end: datetime) -> list[date]:
    """The dates of ``[start, end)`` (the start's date alone for an empty interval)."""
    last = max(start, end - timedelta(microseconds=1)).date()
    return [start.date() + timedelta(days=n) for n in range((last - start.date()).days + 1)]

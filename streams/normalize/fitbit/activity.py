"""Fitbit Web API daily activity summary pages (``activities-summary``) → one labelled batch,
and the heart-rate zone figures that this page and the heart-rate intraday page share.

Format (docs/vendors.md, "Fitbit Web API"): ``summary`` holds the day's totals in camelCase,
``distances`` per activity and ``heartRateZones`` (name, min, max, minutes, caloriesOut). Every
figure is filed at the local midnight of the requested date, labelled as in ``models/labels.py``
(the All of Us ``activity_summary`` names). The body (``activities[]``, ``goals``, ``summary``)
holds no date of its own, so a page fetched as ``.../date/today.json`` needs nothing resolved:
its date is the page's (``RawPage.date``: the request's, or the archive file's).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from models import labels
from models._validate import req_mapping
from models.errors import DecodeError, Reason
from models.providers import Provider
from models.raw import RawPage
from models.samples import Metric, Resolution, Unit
from streams.normalize.base import Normalized, PerPageNormalizer
from streams.normalize.batching import BatchSpec
from streams.normalize.figures import Figures, daily_figures
from streams.normalize.parsing import json_object, load_json
from streams.normalize.timeconv import zone_of

__all__ = ["FitbitActivitySummary", "zone_figures"]

_SUMMARY_FIELDS = {  # Fitbit daily activity summary field → our label
    "steps": labels.STEPS, "caloriesOut": labels.CALORIES_OUT, "caloriesBMR": labels.CALORIES_BMR,
    "activityCalories": labels.ACTIVITY_CALORIES, "marginalCalories": labels.MARGINAL_CALORIES,
    "sedentaryMinutes": labels.SEDENTARY_MINUTES, "lightlyActiveMinutes": labels.LIGHTLY_ACTIVE_MINUTES,
    "fairlyActiveMinutes": labels.FAIRLY_ACTIVE_MINUTES, "veryActiveMinutes": labels.VERY_ACTIVE_MINUTES,
    "floors": labels.FLOORS, "elevation": labels.ELEVATION, "restingHeartRate": labels.RESTING_HEART_RATE,
}
_ZONE_FIELDS = (("minutes", labels.ZONE_MINUTES), ("min", labels.ZONE_MIN), ("max", labels.ZONE_MAX),
                ("caloriesOut", labels.ZONE_CALORIES_OUT))


class FitbitActivitySummary(PerPageNormalizer):
    """The daily activity summary: one page a day, its figures as one ``VENDOR_DAILY`` batch."""

    provider = Provider.FITBIT
    data_types = ("activities-summary",)

    def normalize_page(self, page: RawPage, research_id: str, *, secret: bytes) -> Normalized:
        del secret  # no identifiers to pseudonymize
        return _activity_summary(load_json(page.body), page, research_id)


def zone_figures(zones: Any) -> Figures:
    """The figures of Fitbit ``heartRateZones`` entries, labelled ``hr_zone.<name>.<field>``."""
    figures: Figures = []
    for zone in zones if isinstance(zones, list) else []:
        if isinstance(zone, Mapping) and isinstance(zone.get("name"), str):
            for source, field in _ZONE_FIELDS:
                if source in zone:
                    figures.append((labels.hr_zone(zone["name"], field), zone[source]))
    return figures


def _activity_summary(body: Any, page: RawPage, research_id: str) -> Normalized:
    summary = req_mapping(json_object(body), "summary")
    if page.date is None:
        raise DecodeError("the activity summary page has no requested date", reason=Reason.MISSING_FIELD, field="date")
    figures = [(label, summary[key]) for key, label in _SUMMARY_FIELDS.items() if key in summary]
    distances = summary.get("distances")
    if isinstance(distances, list):
        total = [d.get("distance") for d in distances if isinstance(d, Mapping) and d.get("activity") == "total"]
        figures += [(labels.DISTANCE, total[0])] if total else []
    figures += zone_figures(summary.get("heartRateZones"))
    zone = zone_of(page.timezone, page.utc_offset_ms)
    spec = BatchSpec(research_id, Metric.VENDOR_DAILY, Unit.MIXED, Resolution.DAY, page)
    return daily_figures(figures, date.fromisoformat(page.date), zone, spec)

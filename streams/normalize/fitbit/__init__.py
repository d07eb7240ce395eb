"""The Fitbit Web API formats, one module each: intraday (the batched path), the daily activity
summary, sleep v1.2 and devices (docs/vendors.md, "Fitbit Web API"). Cohort archives of the
same resources arrive as the same pages."""

from __future__ import annotations

from typing import Any

from streams.normalize.base import Normalizer
from streams.normalize.fitbit.activity import FitbitActivitySummary
from streams.normalize.fitbit.devices import FitbitDevices
from streams.normalize.fitbit.intraday import FitbitIntraday
from streams.normalize.fitbit.sleep import FitbitSleep

__all__ = ["NORMALIZERS", "FitbitActivitySummary", "FitbitDevices", "FitbitIntraday", "FitbitSleep"]

#: One normalizer per format; ``streams/normalize/__init__.py`` registers them.
NORMALIZERS: tuple[Normalizer[Any], ...] = (FitbitIntraday(), FitbitActivitySummary(), FitbitSleep(), FitbitDevices())

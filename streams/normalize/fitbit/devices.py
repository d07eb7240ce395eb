"""Fitbit Web API device pages → one ``DEVICE`` sample per device: its last sync and battery.

Format (docs/vendors.md, "Fitbit Web API"): a list of devices (``id``, ``deviceVersion``,
``battery``, ``batteryLevel``, ``lastSyncTime`` as a local wall-clock datetime, ``type``).
Device serials identify people as well as names do, so only a keyed pseudonym is kept.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

import polars as pl

from models._validate import req_list
from models.providers import Provider
from models.raw import RawPage
from models.samples import Attribute, Metric, Resolution, Unit
from streams.normalize.base import Normalized, PerPageNormalizer
from streams.normalize.batching import BatchSpec, cut_page, originals_of
from streams.normalize.parsing import json_object, load_json, local_datetimes, numbers
from streams.normalize.timeconv import local_to_utc, time_reason, zone_of

__all__ = ["FitbitDevices"]


class FitbitDevices(PerPageNormalizer):
    """The participant's devices (a handful), each as one sample at its last sync."""

    provider = Provider.FITBIT
    data_types = ("devices",)

    def normalize_page(self, page: RawPage, research_id: str, *, secret: bytes) -> Normalized:
        body = load_json(page.body)
        devices = body if isinstance(body, list) else req_list(json_object(body), "devices")
        zone = zone_of(page.timezone, page.utc_offset_ms)
        result = Normalized()
        for i, device in enumerate(devices):  # a handful per participant
            item = device if isinstance(device, Mapping) else {}
            synced = local_datetimes([item.get("lastSyncTime")])
            utc, offset = local_to_utc(pl.col("start"), zone, ordered_day=False)
            frame = pl.DataFrame({"idx": [i], "start": synced, "value": numbers([item.get("batteryLevel")])})
            frame = frame.with_columns(ts=utc, offset=offset, time_reason=time_reason(pl.col("start"), utc),
                                       local_date=pl.col("start").dt.date().cast(pl.String).fill_null(page.date or ""))
            attributes: dict[str, Attribute] = {
                # Device serials identify people as well as names do: keep a keyed pseudonym only.
                "device_id": _device_pseudonym(secret, research_id, str(item.get("id"))),
                "device_version": str(item.get("deviceVersion")), "battery": str(item.get("battery")),
                "device_type": str(item.get("type")),
            }
            spec = BatchSpec(research_id, Metric.DEVICE, Unit.PERCENT, Resolution.EVENT, page, attributes)
            result.extend(cut_page(frame.drop("start"), spec, original=originals_of(devices)))
        return result


def _device_pseudonym(secret: bytes, research_id: str, device_id: str) -> str:
    digest = hmac.new(secret, f"device\x00{research_id}\x00{device_id}".encode(), hashlib.sha256).hexdigest()
    return "D" + digest[:16]

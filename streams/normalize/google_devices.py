"""Google Health API v4 ``pairedDevices.list`` pages → one ``DEVICE`` sample per device.

Format (docs/vendors.md, "Google Health API", "pairedDevices"): ``{"pairedDevices":
[PairedDevice], "nextPageToken"?}`` with ``PairedDevice{name?, batteryLevel, batteryStatus,
deviceType, deviceVersion, lastSyncTime, features[]}``; a list under ``devices`` is read too, and
a page without either list is an empty page. ``lastSyncTime`` is RFC 3339 UTC; the local time of
the sync (the sample's offset and date) comes from the page's zone, as for Google's daily
points (``google_health.page_zone``: the participant's IANA zone, else a fixed offset, else UTC).

The sample is the one Fitbit's devices give (``fitbit/devices.py``: ``device_sample``): value the
battery level (null when absent), label and ``device_id`` the keyed pseudonym of the device.
A paired device has no ``id``: its ``name`` (``users/{user}/pairedDevices/{id}``) tells the
participant's devices apart when present, else its type and model.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import polars as pl

from models._validate import req_list
from models.providers import Provider
from models.raw import RawPage
from streams.normalize.base import Normalized, PerPageNormalizer
from streams.normalize.fitbit.devices import device_pseudonym, device_sample
from streams.normalize.google_health import page_zone
from streams.normalize.parsing import as_text, json_object, load_json
from streams.normalize.timeconv import Zone

__all__ = ["GooglePairedDevices"]

_LIST_KEYS = ("pairedDevices", "devices")


class GooglePairedDevices(PerPageNormalizer):
    """The participant's paired devices (a handful), each as one sample at its last sync."""

    provider = Provider.GOOGLE_HEALTH
    data_types = ("paired-devices",)

    def normalize_page(self, page: RawPage, research_id: str, *, secret: bytes) -> Normalized:
        body = json_object(load_json(page.body))
        key = next((k for k in _LIST_KEYS if k in body), None)
        devices = req_list(body, key) if key else []  # an empty page omits the list
        zone = page_zone(page)
        result = Normalized()
        for device in devices:
            item = device if isinstance(device, Mapping) else {}
            ts = _utc_seconds(item.get("lastSyncTime"))
            result.extend(device_sample(
                page, research_id, ts=ts, offset=_offset_at(zone, ts), battery_level=item.get("batteryLevel"),
                original=device, device_id=device_pseudonym(secret, research_id, _device_key(item)),
                attributes={"device_version": as_text(item.get("deviceVersion")),
                            "battery": as_text(item.get("batteryStatus")),
                            "device_type": as_text(item.get("deviceType"))}))
        return result


def _device_key(device: Mapping[str, Any]) -> str:
    name = device.get("name")
    if isinstance(name, str) and name:
        return name
    return f"{device.get('deviceType')}\x00{device.get('deviceVersion')}"


def _utc_seconds(value: Any) -> int | None:
    """UTC epoch seconds of an RFC 3339 time (any fractional digits, kept to the second); None if unusable."""
    if not isinstance(value, str):
        return None
    parsed = pl.Series([value], dtype=pl.String).str.to_datetime(time_zone="UTC", strict=False, time_unit="us")
    seconds = parsed.dt.epoch("s")[0]
    return None if seconds is None else int(seconds)


def _offset_at(zone: Zone, ts: int | None) -> int:
    """The zone's UTC offset in seconds at the instant ``ts``."""
    if zone.name is None or ts is None:
        return zone.offset_s or 0
    try:
        offset = datetime.fromtimestamp(ts, zoneinfo.ZoneInfo(zone.name)).utcoffset()
    except (OverflowError, ValueError, OSError):  # an instant at the ends of the calendar
        return 0
    return int(offset.total_seconds()) if offset is not None else 0


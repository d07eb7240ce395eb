"""Fitbit Web API device pages → one ``DEVICE`` sample per device: its last sync and battery.

Format (docs/vendors.md, "Fitbit Web API"): a list of devices (``id``, ``deviceVersion``,
``battery``, ``batteryLevel``, ``lastSyncTime`` as a local wall-clock datetime, ``type``).
Device serials identify people as well as names do, so only a keyed pseudonym is kept.

The device sample itself (``device_sample``) and the pseudonym (``device_pseudonym``) are shared
with Google Health's paired devices (``streams/normalize/google_devices.py``): one shape of
``DEVICE`` batch whichever vendor the device syncs with.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Mapping
from typing import Any, cast

import orjson
import polars as pl

from models._validate import req_list
from models.errors import Reason
from models.providers import Provider
from models.raw import RawPage
from models.samples import Attribute, Metric, Resolution, SampleBatch, Unit
from streams.normalize.base import Normalized, PerPageNormalizer, Rejected
from streams.normalize.parsing import as_number, as_text, json_object, load_json, local_datetimes
from streams.normalize.timeconv import Zone, local_to_utc, time_reason, zone_of

__all__ = ["FitbitDevices", "device_pseudonym", "device_sample"]

_MAX_OFFSET_S = 18 * 3600  # the widest UTC offset a SampleBatch accepts


class FitbitDevices(PerPageNormalizer):
    """The participant's devices (a handful), each as one sample at its last sync."""

    provider = Provider.FITBIT
    data_types = ("devices",)

    def normalize_page(self, page: RawPage, research_id: str, *, secret: bytes) -> Normalized:
        body = load_json(page.body)
        devices = body if isinstance(body, list) else req_list(json_object(body), "devices")
        zone = zone_of(page.timezone, page.utc_offset_ms)
        result = Normalized()
        for device in devices:  # a handful per participant
            item = device if isinstance(device, Mapping) else {}
            ts, offset, reason = _last_sync(item.get("lastSyncTime"), zone)
            key = item.get("id") if item.get("id") is not None else f"{item.get('type')}\x00{item.get('deviceVersion')}"
            result.extend(device_sample(
                page, research_id, ts=ts, offset=offset, time_reason=reason, battery_level=item.get("batteryLevel"),
                original=device, device_id=device_pseudonym(secret, research_id, str(key)),
                attributes={"device_version": as_text(item.get("deviceVersion")),
                            "battery": as_text(item.get("battery")), "device_type": as_text(item.get("type"))}))
        return result


def device_pseudonym(secret: bytes, research_id: str, device_key: str) -> str:
    """The keyed pseudonym of one participant's device (``D`` + 16 hex digits, the sample's label).

    ``device_key`` is whatever tells the participant's devices apart at the vendor (Fitbit's
    ``id``, else its type and model); it never leaves this function: serials identify people as
    well as names do.
    """
    digest = hmac.new(secret, f"device\x00{research_id}\x00{device_key}".encode(), hashlib.sha256).hexdigest()
    return "D" + digest[:16]


def device_sample(page: RawPage, research_id: str, *, ts: int | None, offset: int, battery_level: Any,
                  device_id: str, attributes: dict[str, Attribute], original: Any,
                  time_reason: Reason = Reason.BAD_TIME) -> Normalized:
    """One device's last sync as one ``DEVICE`` sample, or one reject (``time_reason``) when the
    sync time is unusable (``ts`` None) or its offset is no zone's.

    The sample is at the sync (UTC ``ts``, local ``offset``), filed under the local date of the
    sync, labelled with the device's pseudonym (so that two devices syncing in the same second
    stay two samples), and its value is the battery level in percent. A device that reports no
    level, or one that is not a percentage, is still a device that synced: its value is null,
    not a reject. That is why devices are not cut by ``batching.cut_batches``, whose validation
    rejects a null value of every other metric.
    """
    if ts is None or abs(offset) > _MAX_OFFSET_S:
        reason = time_reason if ts is None else Reason.BAD_TIME
        return Normalized(input_samples=1, rejects=[Rejected(
            reason=reason, count=1, detail=f"1 {Metric.DEVICE.value} sample(s) rejected: {reason.value}",
            original=orjson.dumps([_without_serials(original, device_id)]))])
    local_date = pl.from_epoch(pl.Series([ts + offset]), time_unit="s").dt.date()[0].isoformat()
    batch = SampleBatch(
        research_id=research_id, metric=Metric.DEVICE, unit=Unit.PERCENT, resolution=Resolution.EVENT,
        source=page.provider, utc_offset_s=offset, local_date=local_date, timestamps=[ts],
        # A device without a battery level: the one sample value that may be null (see above).
        values=cast("list[float]", [_percent(battery_level)]), labels=[device_id],
        fetched_at=page.fetched_at, request_id=page.request_id, attributes={"device_id": device_id, **attributes})
    return Normalized(batches=[batch], input_samples=1)


_SERIALS = ("id", "mac", "macAddress", "name")  # identify a device, and so its wearer


def _without_serials(original: Any, device_id: str) -> Any:
    """A rejected device as the dead-letter topic keeps it: its pseudonym for its serials."""
    if not isinstance(original, Mapping):
        return original
    return {**{k: v for k, v in original.items() if k not in _SERIALS}, "device_id": device_id}


def _last_sync(value: Any, zone: Zone) -> tuple[int | None, int, Reason]:
    """UTC epoch seconds and offset of a local wall-clock ``lastSyncTime``, and why they are
    missing when they are (unreadable, or a time the zone skips)."""
    utc, offset = local_to_utc(pl.col("start"), zone, ordered_day=False)
    ts, off, reason = pl.DataFrame({"start": local_datetimes([value])}).select(
        ts=utc, offset=offset, reason=time_reason(pl.col("start"), utc)).row(0)
    return (None, 0, Reason(reason)) if ts is None or off is None else (int(ts), int(off), Reason.BAD_TIME)


def _percent(value: Any) -> float | None:
    """A battery level in percent; None when absent or not a percentage (0-100)."""
    level = as_number(value)
    return level if level is not None and math.isfinite(level) and 0 <= level <= 100 else None


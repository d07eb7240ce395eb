"""Google Health paired devices (streams/normalize/google_devices.py): one DEVICE sample per device,
local times from the page's zone, pseudonyms only, devices without a name or a battery level."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from models.errors import DecodeError, Reason
from models.providers import Provider
from models.raw import RawPage
from models.samples import Metric, Resolution, Unit
from streams.normalize import normalize
from streams.normalize.fitbit.devices import device_pseudonym
from tests.builders import SECRET

RID = "R0123456789abcdef0123"
WATCH = {"name": "users/me/pairedDevices/a1b2", "batteryLevel": 80, "batteryStatus": "BATTERY_STATUS_OK",
         "deviceType": "WATCH", "deviceVersion": "Pixel Watch 3", "lastSyncTime": "2026-10-01T03:59:30.5Z",
         "features": ["HEART_RATE"]}
TRACKER = {"batteryStatus": "BATTERY_STATUS_LOW", "deviceType": "TRACKER", "deviceVersion": "Charge 6",
           "lastSyncTime": "2026-10-01T03:59:30Z"}


def _page(body: Any, *, timezone: str | None = "America/New_York", utc_offset_ms: int | None = None) -> RawPage:
    return RawPage(provider=Provider.GOOGLE_HEALTH, data_type="paired-devices", date=None, body=orjson.dumps(body),
                   timezone=timezone, utc_offset_ms=utc_offset_ms, fetched_at=1.0, request_id="t")


def _utc(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def test_each_device_is_one_sample_at_its_last_sync_in_local_time() -> None:
    result = normalize(_page({"pairedDevices": [WATCH, TRACKER], "nextPageToken": "n"}), RID, secret=SECRET)
    watch, tracker = result.batches
    assert (result.input_samples, result.samples, result.rejects) == (2, 2, [])
    assert (watch.metric, watch.unit, watch.resolution) == (Metric.DEVICE, Unit.PERCENT, Resolution.EVENT)
    # 03:59:30 UTC is 23:59:30 the evening before in New York (EDT, UTC-4)
    assert (watch.timestamps, watch.utc_offset_s, watch.local_date) == (
        [_utc("2026-10-01T03:59:30")], -14400, "2026-09-30")
    assert watch.values == [80.0] and tracker.values == [None]  # no battery level: a device all the same
    assert watch.attributes == {"device_id": (watch.labels or [""])[0], "device_version": "Pixel Watch 3",
                                "battery": "BATTERY_STATUS_OK", "device_type": "WATCH"}
    # the same second, two devices: two labels, so two sample identities
    assert watch.timestamps == tracker.timestamps and watch.labels != tracker.labels


def test_pseudonyms_are_the_fitbit_ones_keyed_by_name_else_type_and_model() -> None:
    result = normalize(_page({"pairedDevices": [WATCH, TRACKER]}), RID, secret=SECRET)
    labels = [b.labels for b in result.batches]
    assert labels == [[device_pseudonym(SECRET, RID, "users/me/pairedDevices/a1b2")],
                      [device_pseudonym(SECRET, RID, "TRACKER\x00Charge 6")]]
    text = b"".join(b.to_bytes() for b in result.batches).decode()
    assert "a1b2" not in text and "pairedDevices" not in text
    other = normalize(_page({"pairedDevices": [WATCH]}), "R9", secret=SECRET).batches[0]
    assert other.labels != labels[0]  # per participant: one device id never links two people


def test_the_devices_key_a_fixed_offset_and_utc_by_default() -> None:
    fixed = normalize(_page({"devices": [WATCH]}, timezone=None, utc_offset_ms=19_800_000), RID, secret=SECRET)
    assert [(b.utc_offset_s, b.local_date) for b in fixed.batches] == [(19800, "2026-10-01")]
    plain = normalize(_page({"devices": [WATCH]}, timezone=None), RID, secret=SECRET)
    assert [(b.utc_offset_s, b.local_date) for b in plain.batches] == [(0, "2026-10-01")]


@pytest.mark.parametrize("body", [{}, {"nextPageToken": "x"}, {"pairedDevices": []}])
def test_a_page_without_devices_is_empty(body: dict[str, Any]) -> None:
    result = normalize(_page(body), RID, secret=SECRET)
    assert (result.batches, result.rejects, result.input_samples) == ([], [], 0)


def test_unusable_sync_times_and_levels() -> None:
    odd = [{**WATCH, "lastSyncTime": "yesterday"}, {**WATCH, "lastSyncTime": 5}, {**WATCH, "batteryLevel": "x"},
           {**WATCH, "batteryLevel": 140}, "junk"]
    result = normalize(_page({"pairedDevices": odd}), RID, secret=SECRET)
    assert [(r.reason, r.count) for r in result.rejects] == [(Reason.BAD_TIME, 1)] * 3
    (kept,) = orjson.loads(result.rejects[0].original)  # the device's name is a serial: its pseudonym instead
    assert {k: v for k, v in kept.items() if k != "device_id"} == {k: v for k, v in odd[0].items() if k != "name"}
    assert kept["device_id"].startswith("D") and "pairedDevices/a1b2" not in result.rejects[0].original.decode()
    assert [b.values for b in result.batches] == [[None], [None]]  # a level that is no percentage is unknown
    assert result.input_samples == 5 == result.samples + result.rejected


def test_a_list_that_is_not_a_list_makes_the_page_unusable() -> None:
    with pytest.raises(DecodeError) as info:
        normalize(_page({"pairedDevices": {"a": 1}}), RID, secret=SECRET)
    assert (info.value.reason, info.value.field) == (Reason.BAD_FIELD, "pairedDevices")

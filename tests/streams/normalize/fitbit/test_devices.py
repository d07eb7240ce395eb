"""Fitbit device pages (streams/normalize/fitbit/devices.py): no vendor device id survives."""

from __future__ import annotations

import orjson

from models.errors import Reason
from streams.normalize import normalize
from tests.builders import SECRET, fitbit_page

RID = "R0123456789abcdef0123"


def test_devices_keep_no_vendor_device_id() -> None:
    body = orjson.dumps([{"id": "816713257", "deviceVersion": "Charge 6", "battery": "High", "batteryLevel": 90,
                          "lastSyncTime": "2026-11-20T08:15:00.000", "type": "TRACKER"}])
    result = normalize(fitbit_page("devices", body, detail=None), RID, secret=SECRET)
    batch = result.batches[0]
    assert batch.values == [90.0] and batch.attributes["device_version"] == "Charge 6"
    assert "816713257" not in batch.to_bytes().decode()
    assert str(batch.attributes["device_id"]).startswith("D")


def test_a_sync_time_that_is_not_a_string_is_a_bad_time_not_a_crash() -> None:
    body = orjson.dumps([{"id": "1", "batteryLevel": 90, "lastSyncTime": 1781053200}])
    result = normalize(fitbit_page("devices", body, detail=None), RID, secret=SECRET)
    assert [(r.reason, r.count) for r in result.rejects] == [(Reason.BAD_TIME, 1)] and result.samples == 0


def test_a_device_without_a_battery_level_is_a_device_not_a_reject() -> None:
    body = orjson.dumps([
        {"id": "1", "deviceVersion": "Charge 6", "battery": "High", "batteryLevel": 90,
         "lastSyncTime": "2026-11-20T08:15:00.000", "type": "TRACKER"},
        {"id": "2", "battery": "Empty", "batteryLevel": None, "lastSyncTime": "2026-11-20T08:15:00.000"},
        {"id": "3", "deviceVersion": "Aria", "lastSyncTime": "2026-11-20T08:15:00.000", "type": "SCALE"},
        {"id": "4", "batteryLevel": -3, "lastSyncTime": "2026-11-20T08:15:00.000"}])
    result = normalize(fitbit_page("devices", body, detail=None), RID, secret=SECRET)
    assert (result.input_samples, result.samples, result.rejects) == (4, 4, [])
    assert [b.values for b in result.batches] == [[90.0], [None], [None], [None]]
    second = result.batches[1].attributes
    assert (second["battery"], second["device_version"], second["device_type"]) == ("Empty", None, None)
    # four devices in one second: four labels, so four sample identities
    assert len({tuple(b.labels or []) for b in result.batches}) == 4
    assert all(b.labels == [b.attributes["device_id"]] for b in result.batches)


def test_a_sync_time_in_the_spring_forward_gap_does_not_exist() -> None:
    body = orjson.dumps([{"id": "1", "batteryLevel": 90, "lastSyncTime": "2026-03-08T02:30:00.000"}])
    result = normalize(fitbit_page("devices", body, detail=None), RID, secret=SECRET)
    assert [(r.reason, r.count) for r in result.rejects] == [(Reason.NONEXISTENT_LOCAL_TIME, 1)]


def test_a_rejected_device_reaches_the_dead_letters_without_its_serials() -> None:
    body = orjson.dumps([{"id": "816713257", "mac": "A1B2C3D4E5F6", "batteryLevel": 90, "lastSyncTime": "soon",
                          "deviceVersion": "Charge 6"}])
    (reject,) = normalize(fitbit_page("devices", body, detail=None), RID, secret=SECRET).rejects
    kept = reject.original.decode()
    assert "816713257" not in kept and "A1B2C3D4E5F6" not in kept
    assert orjson.loads(reject.original)[0]["deviceVersion"] == "Charge 6"  # what helps find the fault stays

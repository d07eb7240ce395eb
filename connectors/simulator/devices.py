"""The devices each simulated account has paired: a tracker, and for some a scale, whose battery
and last sync follow what the account has synced (``Account.synced_until``).

Deterministic per account and seed: the same person always has the same devices, and a device
reports the same battery for the same day of sync; only the clock moves a synced tracker's last
sync on, a quarter of an hour at a time. A share of devices (``World.low_battery_share``) reports
a battery below 20%; the others 20-100%. Rendered in both vendors' shapes (docs/vendors.md):

- Fitbit ``GET /1/user/-/devices.json``: a JSON list of ``{battery, batteryLevel, deviceVersion,
  features, id, lastSyncTime, mac, type}``, ``lastSyncTime`` in local wall-clock time; some
  devices leave ``batteryLevel`` out (https://dev.fitbit.com/build/reference/web-api/devices/get-devices
  lists it, and not every tracker reports a percentage).
- Google ``GET /v4/users/me/pairedDevices``: ``PairedDevice{name, deviceType, batteryStatus,
  batteryLevel, lastSyncTime, deviceVersion, macAddress, features}``, ``lastSyncTime`` RFC 3339 UTC
  (https://developers.google.com/health/reference/rest/v4/users.pairedDevices).
"""

from __future__ import annotations

import hashlib
import random
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from connectors.simulator.world import Account, World

__all__ = ["Device", "fitbit_devices", "google_paired_devices", "paired_devices"]

_TRACKERS = ("Charge 6", "Inspire 3", "Versa 4", "Sense 2", "Luxe", "Pixel Watch 3")
_SCALE = "Aria Air"
_SCALE_SHARE = 0.3  # accounts that also weigh themselves on a scale
_NO_LEVEL_SHARE = 0.25  # Fitbit devices that report a battery status but no percentage
_LOW_BATTERY = 20  # percent: below it, a low battery (World.low_battery_share)
_STEP_S = 900  # a synced tracker's last sync moves on in quarter hours


@dataclass(frozen=True, slots=True)
class Device:
    """One paired device as the vendor's servers last heard from it."""

    device_id: str
    mac: str
    kind: str  # TRACKER | SCALE
    version: str
    battery_level: int  # percent, as of the last sync
    last_sync: float  # epoch seconds
    reports_level: bool  # whether Fitbit's list carries ``batteryLevel``

    @property
    def battery(self) -> str:
        """The battery as Fitbit and Google name it: High, Medium, Low or Empty."""
        if self.battery_level > 60:
            return "High"
        if self.battery_level >= 25:
            return "Medium"
        return "Low" if self.battery_level > 0 else "Empty"


def paired_devices(world: World, account: Account, now: float) -> list[Device]:
    """The account's devices: its tracker, last synced when its data reached the servers (and no
    later than ``now``), and for some accounts a scale that synced a few days before; none when
    the world's accounts pair no devices (``World.pairs_devices``)."""
    if not world.pairs_devices:
        return []
    person, seed = account.participant_id, world.cohort.seed
    rng = random.Random(f"{seed}|{person}|devices")
    tracker_sync = min(account.synced_until, now // _STEP_S * _STEP_S) - rng.randrange(0, 600)
    found = [(tracker_sync, "TRACKER", rng.choice(_TRACKERS))]
    if rng.random() < _SCALE_SHARE:
        found.append((tracker_sync - rng.randrange(86_400, 4 * 86_400), "SCALE", _SCALE))
    devices = []
    for index, (synced, kind, version) in enumerate(found):
        digest = hashlib.sha256(f"{seed}|{person}|device|{index}".encode()).digest()
        day = datetime.fromtimestamp(synced, UTC).date().isoformat()
        battery = random.Random(f"{seed}|{person}|battery|{index}|{day}")
        low = battery.random() < world.low_battery_share
        level = battery.randrange(0, _LOW_BATTERY) if low else battery.randrange(_LOW_BATTERY, 101)
        devices.append(Device(device_id=str(int.from_bytes(digest[:4], "big")), mac=digest[4:10].hex().upper(),
                              kind=kind, version=version, battery_level=level, last_sync=float(synced),
                              reports_level=digest[10] / 256 >= _NO_LEVEL_SHARE))
    return devices


def fitbit_devices(world: World, account: Account, now: float) -> bytes:
    """The body of ``/1/user/-/devices.json``: a list, last syncs in the account's local time."""
    zone = zoneinfo.ZoneInfo(account.timezone)
    listed = []
    for device in paired_devices(world, account, now):
        item: dict[str, Any] = {"battery": device.battery}
        if device.reports_level:
            item["batteryLevel"] = device.battery_level
        item.update(deviceVersion=device.version, features=[], id=device.device_id,
                    lastSyncTime=datetime.fromtimestamp(device.last_sync, zone).strftime("%Y-%m-%dT%H:%M:%S.000"),
                    mac=device.mac, type=device.kind)
        listed.append(item)
    return orjson.dumps(listed)


def google_paired_devices(world: World, account: Account, now: float) -> list[dict[str, Any]]:
    """The account's ``PairedDevice`` resources, last syncs as RFC 3339 UTC."""
    return [{"name": f"users/me/pairedDevices/{device.device_id}", "deviceType": device.kind,
             "batteryStatus": device.battery, "batteryLevel": device.battery_level,
             "lastSyncTime": f"{datetime.fromtimestamp(device.last_sync, UTC):%Y-%m-%dT%H:%M:%SZ}",
             "deviceVersion": device.version, "macAddress": device.mac, "features": []}
            for device in paired_devices(world, account, now)]

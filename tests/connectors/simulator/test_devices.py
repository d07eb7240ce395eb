"""The simulated paired devices: the same per account and seed, synced when the account's data
was, no later than now; in Fitbit's list shape (some without ``batteryLevel``) and Google's."""

from __future__ import annotations

import time
import zoneinfo
from datetime import UTC, datetime

import orjson

from connectors.simulator.cohort import SyntheticCohort
from connectors.simulator.devices import Device, fitbit_devices, google_paired_devices, paired_devices
from connectors.simulator.world import World
from models.providers import Provider

_FITBIT_KEYS = {"battery", "batteryLevel", "deviceVersion", "features", "id", "lastSyncTime", "mac", "type"}


def _world(participants: int = 40, seed: int = 3) -> World:
    return World(SyntheticCohort(participants, seed=seed), days=3, seed=seed, late_share=0.5)


def test_devices_are_the_same_per_account_and_seed_and_sync_with_the_account() -> None:
    world, again, now = _world(), _world(), time.time()
    kinds = []
    for person in world.cohort.participant_ids:
        account = world.account(Provider.FITBIT, person)
        devices = paired_devices(world, account, now)
        assert devices == paired_devices(again, again.account(Provider.FITBIT, person), now)
        assert devices[0].kind == "TRACKER" and all(d.kind == "SCALE" for d in devices[1:]) and len(devices) <= 2
        tracker = devices[0]
        assert tracker.last_sync <= min(account.synced_until, now) and tracker.last_sync > min(
            account.synced_until, now) - 1800  # a late device last synced when its data stops
        assert all(d.last_sync < tracker.last_sync for d in devices[1:])  # the scale, days before
        kinds.append(len(devices))
    assert 1 in kinds and 2 in kinds  # some weigh themselves too
    lagging = next(a for a in world.accounts() if a.synced_until < now - 86_400)
    assert paired_devices(world, lagging, now)[0].last_sync <= lagging.synced_until


def test_battery_names_follow_the_level() -> None:
    def named(level: int) -> str:
        return Device("1", "AB", "TRACKER", "Luxe", level, 0.0, True).battery

    assert [named(level) for level in (100, 61, 60, 25, 24, 1, 0)] == [
        "High", "High", "Medium", "Medium", "Low", "Low", "Empty"]


def test_fitbit_lists_devices_with_local_sync_times_and_sometimes_no_level() -> None:
    world, now = _world(), time.time()
    levels = 0
    listed_all = []
    for account in (world.account(Provider.FITBIT, p) for p in world.cohort.participant_ids):
        listed = orjson.loads(fitbit_devices(world, account, now))
        assert isinstance(listed, list)
        for item, device in zip(listed, paired_devices(world, account, now), strict=True):
            assert set(item) <= _FITBIT_KEYS and set(item) >= _FITBIT_KEYS - {"batteryLevel"}
            local = datetime.fromtimestamp(device.last_sync, zoneinfo.ZoneInfo(account.timezone))
            assert item["lastSyncTime"] == local.strftime("%Y-%m-%dT%H:%M:%S.000")  # wall clock, no offset
            assert item["battery"] in ("High", "Medium", "Low", "Empty") and item["type"] == device.kind
            levels += "batteryLevel" in item
            listed_all.append(item)
    assert 0 < levels < len(listed_all)  # a share of devices report no percentage


def test_google_lists_paired_devices_in_utc() -> None:
    world, now = _world(), time.time()
    account = world.account(Provider.GOOGLE_HEALTH, world.cohort.participant_ids[0])
    (tracker, *_) = google_paired_devices(world, account, now)
    device = paired_devices(world, account, now)[0]
    assert tracker == {"name": f"users/me/pairedDevices/{device.device_id}", "deviceType": "TRACKER",
                       "batteryStatus": device.battery, "batteryLevel": device.battery_level,
                       "lastSyncTime": f"{datetime.fromtimestamp(device.last_sync, UTC):%Y-%m-%dT%H:%M:%SZ}",
                       "deviceVersion": device.version, "macAddress": device.mac, "features": []}


def test_a_world_whose_accounts_pair_no_devices_lists_none() -> None:
    world = World(SyntheticCohort(2, seed=8), days=2)
    account = world.account(Provider.GOOGLE_HEALTH, world.cohort.participant_ids[0])
    assert paired_devices(world, account, time.time())
    world.pairs_devices = False
    assert paired_devices(world, account, time.time()) == []

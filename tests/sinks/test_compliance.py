"""Device compliance metrics (sinks/compliance.py): the latest sync per participant, and how many
participants are in each sync-age and battery bucket, with no identifier in any label."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

from models.providers import Provider
from models.samples import Metric, Resolution, SampleBatch, Unit
from sinks import compliance
from sinks.compliance import DeviceCompliance, DeviceSync

NOW = 1_790_000_000.0
HOUR = 3600


def _devices(research_id: str, *syncs: tuple[str, float, float | None]) -> SampleBatch:
    """One batch of ``(device label, hours before NOW, battery level)`` syncs."""
    return SampleBatch(research_id=research_id, metric=Metric.DEVICE, unit=Unit.PERCENT, resolution=Resolution.EVENT,
                       source=Provider.FITBIT, utc_offset_s=0, local_date="2026-09-21",
                       timestamps=[int(NOW - hours * HOUR) for _, hours, _ in syncs],
                       values=[level for *_, level in syncs], labels=[label for label, *_ in syncs])


def _cohort() -> DeviceCompliance:
    state = DeviceCompliance(clock=lambda: NOW)
    state.observe([
        _devices("R1", ("D" + "1" * 16, 2, 80.0), ("D" + "2" * 16, 30, 5.0)),  # a tracker today, a scale yesterday
        _devices("R2", ("D" + "3" * 16, 50, 20.0)),
        _devices("R3", ("D" + "4" * 16, 200, None)),  # no battery level reported
        SampleBatch(research_id="R4", metric=Metric.HEART_RATE, unit=Unit.BPM, resolution=Resolution.SECOND,
                    source=Provider.FITBIT, utc_offset_s=0, local_date="2026-09-21", timestamps=[int(NOW)],
                    values=[60.0]),  # not a device: ignored
    ])
    return state


def test_each_participant_counts_once_with_the_device_that_synced_last() -> None:
    latest = _cohort().latest()
    assert latest == {"R1": DeviceSync(int(NOW - 2 * HOUR), 80.0), "R2": DeviceSync(int(NOW - 50 * HOUR), 20.0),
                      "R3": DeviceSync(int(NOW - 200 * HOUR), None)}


def test_sync_ages_and_battery_levels_by_bucket() -> None:
    state = _cohort()
    ages = dict(state.hours_since_sync().buckets)
    assert ages == {"1.0": 0, "6.0": 1, "12.0": 1, "24.0": 1, "48.0": 1, "72.0": 2, "168.0": 2, "336.0": 3,
                    "+Inf": 3}
    assert state.hours_since_sync().total == 252.0
    assert dict(state.hours_since_sync(now=NOW + 100 * HOUR).buckets)["72.0"] == 0  # silence moves them up
    battery = state.battery_levels()
    assert dict(battery.buckets) == {"10.0": 0, "25.0": 1, "50.0": 1, "75.0": 1, "100.0": 2, "+Inf": 2}
    assert battery.count == 2  # R3's device sent no level


def test_a_device_keeps_its_newest_sync_whatever_the_order() -> None:
    state = DeviceCompliance(clock=lambda: NOW)
    device = "D" + "a" * 16
    state.observe([_devices("R1", (device, 1, 50.0))])
    state.observe([_devices("R1", (device, 10, 90.0))])  # an older page arriving late
    assert state.latest() == {"R1": DeviceSync(int(NOW - HOUR), 50.0)}


def test_served_as_gauge_histograms_without_identifiers() -> None:
    registry = CollectorRegistry()
    registry.register(_cohort())
    value = registry.get_sample_value
    assert value("wearables_device_hours_since_sync_participants_bucket", {"le": "24.0"}) == 1
    assert value("wearables_device_hours_since_sync_participants_gcount") == 3
    assert value("wearables_device_battery_level_participants_bucket", {"le": "25.0"}) == 1
    assert value("wearables_device_battery_level_participants_gsum") == 100.0
    text = generate_latest(registry).decode()
    assert "R1" not in text and "D111" not in text
    assert {label for metric in registry.collect() for sample in metric.samples for label in sample.labels} == {"le"}


def test_observe_devices_feeds_the_process_state_and_its_gauges() -> None:
    compliance.observe_devices([_devices("R0compliance", ("D" + "f" * 16, 1, None))])
    assert "R0compliance" in compliance.COMPLIANCE.latest()
    served = REGISTRY.get_sample_value
    assert served("wearables_device_participants") == len(compliance.COMPLIANCE.latest())
    assert (served("wearables_device_battery_unknown_participants") or 0) >= 1
    assert served("wearables_device_hours_since_sync_participants_gcount") == len(compliance.COMPLIANCE.latest())

"""Device compliance as Prometheus metrics: how long ago participants synced, how full their batteries are.

A study coordinator's first question about a wearable cohort (a Fitabase-style compliance
dashboard): who has not synced for a day or more, whose battery is about to die. The sink sees
every device sync it writes (``DEVICE`` samples of the ``intraday`` topic), so it keeps the
latest sync and battery level of each participant's device in memory and exposes, over
participants, two distributions:

- ``wearables_device_hours_since_sync_participants``: hours since the participant's latest sync,
  computed when Prometheus scrapes, so a device that stays silent moves up the buckets;
- ``wearables_device_battery_level_participants``: the battery level (percent) at that sync,
  over the participants whose device reported one; those whose did not are counted by
  ``wearables_device_battery_unknown_participants``.

Each participant counts once, with the device that synced last (a scale that synced this
morning says the participant synced, and its battery is the one shown). The distributions are
gauge histograms: cumulative ``le`` buckets of how many participants are in each range *now*,
which ``histogram_quantile`` reads like any histogram. ``le`` is their only label: no
participant or device identifier ever becomes one (the plain gauges come from
``runtime.metrics``, whose allow-list guards their label names; it has no gauge histogram, so
those are one collector here, with no label of their own).

What is in memory is what this process has written since it started: after a restart a
participant shows up again at their next sync.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from threading import Lock

from prometheus_client import REGISTRY
from prometheus_client.core import GaugeHistogramMetricFamily
from prometheus_client.registry import Collector

from models.samples import Metric, SampleBatch
from runtime.metrics import METRIC_PREFIX, gauge

__all__ = ["BATTERY_BUCKETS", "BATTERY_UNKNOWN", "COMPLIANCE", "PARTICIPANTS", "SYNC_AGE_BUCKETS_H",
           "DeviceCompliance", "DeviceSync", "Distribution", "observe_devices"]

#: Upper bounds (percent) of the battery buckets; a level above the last is in ``+Inf``.
BATTERY_BUCKETS = (10.0, 25.0, 50.0, 75.0, 100.0)
#: Upper bounds (hours) of the sync-age buckets: an hour, a quarter and half a day, a day, two and
#: three days (where compliance follow-ups usually start), a week, two weeks.
SYNC_AGE_BUCKETS_H = (1.0, 6.0, 12.0, 24.0, 48.0, 72.0, 168.0, 336.0)

PARTICIPANTS = gauge("device_participants", "Participants with a device sync seen by this sink")
BATTERY_UNKNOWN = gauge("device_battery_unknown_participants",
                        "Participants whose most recently synced device reported no battery level")


@dataclass(frozen=True, slots=True)
class DeviceSync:
    """A device's latest sync: when (UTC epoch seconds) and its battery level then (percent, or None)."""

    synced_at: int
    battery_level: float | None


@dataclass(frozen=True, slots=True)
class Distribution:
    """How many participants fall at or under each bound (cumulative, ``+Inf`` last), and the sum."""

    buckets: tuple[tuple[str, int], ...]
    total: float

    @property
    def count(self) -> int:
        return self.buckets[-1][1]


class DeviceCompliance(Collector):
    """The latest sync of every participant's device, and the distributions over participants.

    :param clock: the time now (epoch seconds), read when the sync ages are computed.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = Lock()  # observe runs in the sink, collect in the metrics server's thread
        self._devices: dict[tuple[str, str], DeviceSync] = {}

    def observe(self, batches: Iterable[SampleBatch]) -> None:
        """Take in the ``DEVICE`` samples of ``batches`` (others are ignored); a device keeps its newest sync."""
        with self._lock:
            for batch in batches:
                if batch.metric is not Metric.DEVICE or batch.is_deletion:
                    continue
                for ts, level, device in zip(batch.timestamps, batch.values, batch.labels or [], strict=False):
                    key = (batch.research_id, device)
                    known = self._devices.get(key)
                    if known is None or ts >= known.synced_at:
                        self._devices[key] = DeviceSync(int(ts), None if level is None else float(level))

    def latest(self) -> dict[str, DeviceSync]:
        """Per participant, the sync of the device that synced last."""
        with self._lock:
            return self._latest()

    def hours_since_sync(self, now: float | None = None) -> Distribution:
        """Hours since each participant's latest sync (a sync in the future, clock skew, is 0)."""
        at = self._clock() if now is None else now
        return _distribution([max(0.0, at - sync.synced_at) / 3600 for sync in self.latest().values()],
                             SYNC_AGE_BUCKETS_H)

    def battery_levels(self) -> Distribution:
        """The battery level at each participant's latest sync, where the device reported one."""
        return _distribution([s.battery_level for s in self.latest().values() if s.battery_level is not None],
                             BATTERY_BUCKETS)

    def collect(self) -> Iterator[GaugeHistogramMetricFamily]:
        yield _family("device_hours_since_sync_participants",
                      "Participants by hours since their latest device sync", self.hours_since_sync())
        yield _family("device_battery_level_participants",
                      "Participants by battery level (percent) of their most recently synced device",
                      self.battery_levels())

    def describe(self) -> Iterator[GaugeHistogramMetricFamily]:
        """The families without computing them (the registry asks once, at registration)."""
        for name in ("device_hours_since_sync_participants", "device_battery_level_participants"):
            yield GaugeHistogramMetricFamily(METRIC_PREFIX + name, "", buckets=[("+Inf", 0)])

    def _latest(self) -> dict[str, DeviceSync]:
        out: dict[str, DeviceSync] = {}
        for (research_id, _), sync in self._devices.items():
            if research_id not in out or sync.synced_at > out[research_id].synced_at:
                out[research_id] = sync
        return out


def _distribution(values: Sequence[float], bounds: Sequence[float]) -> Distribution:
    counts = [sum(1 for v in values if v <= bound) for bound in bounds]
    buckets = tuple((str(bound), n) for bound, n in zip(bounds, counts, strict=True))
    return Distribution(buckets=(*buckets, ("+Inf", len(values))), total=float(sum(values)))


def _family(name: str, documentation: str, distribution: Distribution) -> GaugeHistogramMetricFamily:
    return GaugeHistogramMetricFamily(METRIC_PREFIX + name, documentation, buckets=list(distribution.buckets),
                                      gsum_value=distribution.total)


#: The process's compliance state, served on the default registry's ``/metrics``.
COMPLIANCE = DeviceCompliance()
REGISTRY.register(COMPLIANCE)


def observe_devices(batches: Iterable[SampleBatch]) -> None:
    """Take the device syncs of ``intraday`` batches into the process's compliance metrics."""
    COMPLIANCE.observe(batches)
    latest = COMPLIANCE.latest()
    PARTICIPANTS.set(len(latest))
    BATTERY_UNKNOWN.set(sum(1 for sync in latest.values() if sync.battery_level is None))

"""Response bodies in the vendors' JSON shapes, cut to what each device has synced."""

from __future__ import annotations

import functools
import zoneinfo
from datetime import date, datetime, timedelta

import orjson

from connectors.simulator.world import Account, World

__all__ = ["fitbit_day", "google_page", "google_points"]


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}:00"


def fitbit_day(world: World, account: Account, resource: str, day: date) -> bytes:
    """``/1/user/-/activities/{steps|heart}/date/{day}/1d/1min.json`` as far as the device has synced."""
    visible = world.visible_minutes(account, day)
    steps, rates = world.series(account.participant_id, day)
    if resource == "steps":
        dataset = [{"time": _clock(m), "value": steps[m]} for m in range(visible)]
        return orjson.dumps({
            "activities-steps": [{"dateTime": day.isoformat(), "value": str(sum(steps[:visible]))}],
            "activities-steps-intraday": {"dataset": dataset, "datasetInterval": 1, "datasetType": "minute"}})
    dataset = [{"time": _clock(m), "value": rates[m]} for m in range(visible) if rates[m] is not None]
    return orjson.dumps({
        "activities-heart": [{"dateTime": day.isoformat(), "value": {"customHeartRateZones": [],
                                                                   "heartRateZones": []}}],
        "activities-heart-intraday": {"dataset": dataset, "datasetInterval": 1, "datasetType": "minute"}})


def google_points(world: World, account: Account, data_type: str, start: float, end: float
                  ) -> list[tuple[int, int, int]]:
    """Every synced ``steps`` / ``heart-rate`` sample with a physical time in [start, end), as
    (epoch seconds, value, UTC offset seconds); ``google_page`` renders a page of them."""
    zone = zoneinfo.ZoneInfo(account.timezone)
    first = datetime.fromtimestamp(start, zone).date()
    last = datetime.fromtimestamp(max(start, end - 1), zone).date()
    limit = min(end, account.synced_until)
    points: list[tuple[int, int, int]] = []
    day = first
    while day <= last:
        if world.first_day <= day <= world.last_day:
            steps, rates = world.series(account.participant_id, day)
            values = steps if data_type == "steps" else rates
            points.extend(p for p in _day_times(day, zone, values) if start <= p[0] < limit)
        day += timedelta(days=1)
    return points


def _day_times(day: date, zone: zoneinfo.ZoneInfo, values: list[int] | list[int | None]
               ) -> list[tuple[int, int, int]]:
    """(epoch, value, offset) of the day's non-empty minutes; Google lists only minutes with steps,
    and no heart-rate point while the watch was off-wrist."""
    midnight = datetime(day.year, day.month, day.day, tzinfo=zone)
    offset = int(midnight.utcoffset().total_seconds())  # type: ignore[union-attr]
    late = midnight.replace(hour=23, minute=59)
    if int(late.utcoffset().total_seconds()) == offset:  # type: ignore[union-attr]
        base = int(midnight.timestamp())  # no clock change today: plain arithmetic
        return [(base + 60 * m, v, offset) for m, v in enumerate(values) if v]
    result = []  # a DST day: wall-clock minutes, as the device records them
    for minute, value in enumerate(values):
        if value:
            local = midnight + timedelta(minutes=minute)
            result.append((int(local.timestamp()), value, int(local.utcoffset().total_seconds())))  # type: ignore[union-attr]
    return result


_STEPS = ('{"name":"users/me/dataTypes/steps/dataPoints/%d","steps":{"count":"%d","interval":{"startTime":"%s",'
          '"endTime":"%s","startUtcOffset":"%ds","endUtcOffset":"%ds"}}}')
_HEART = '{"heartRate":{"beatsPerMinute":"%d","sampleTime":{"physicalTime":"%s","utcOffset":"%ds"}}}'


def google_page(data_type: str, points: list[tuple[int, int, int]], next_token: str | None = None) -> bytes:
    """A ``dataPoints`` list response in the Google Health v4 JSON shape (int64 values as strings).

    Rendered from string templates, not dicts: the simulator has to outpace the scheduler in the
    connector benchmark, and the shape is fixed.
    """
    if data_type == "steps":
        rendered = [_STEPS % (stamp, value, _utc(stamp), _utc(stamp + 60), offset, offset)
                    for stamp, value, offset in points]
    else:
        rendered = [_HEART % (value, _utc(stamp), offset) for stamp, value, offset in points]
    tail = f'],"nextPageToken":"{next_token}"}}' if next_token else "]}"
    return ('{"dataPoints":[' + ",".join(rendered) + tail).encode()


@functools.lru_cache(maxsize=1 << 16)  # samples fall on whole minutes: a few thousand instants a cohort-day
def _utc(stamp: int) -> str:
    day, second = divmod(stamp, 86_400)
    return f"{_utc_date(day)}T{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}Z"


@functools.lru_cache(maxsize=4096)
def _utc_date(epoch_day: int) -> str:
    return (date(1970, 1, 1) + timedelta(days=epoch_day)).isoformat()
